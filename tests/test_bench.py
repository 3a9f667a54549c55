"""The instruments: bench/repro.py finds what changes the bits on this CPU; bench/gpu.py runs every step at toy sizes."""
import json
import os
import sys

import pytest
import torch

from bench import gpu, repro

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_repro_suite_finds_the_thread_dependent_kernel(tmp_path, monkeypatch):
    if torch.get_num_threads() < 2:
        pytest.skip("needs 2 threads to compare with 1")  # CI machines have 2 cores
    monkeypatch.setattr(repro, "REPRO_SETTINGS", {"this machine": {}, "this machine, again": {},
                                                  "1 thread": {"OMP_NUM_THREADS": "1"}})
    cfg = repro.ReproConfig(steps=3, out=str(tmp_path / "suite"))
    res = repro.repro(cfg)["settings"]
    again, one = res["this machine, again"], res["1 thread"]
    assert again["ops_differ"] == [] and again["weights_equal"]
    assert one["threads"] == 1 and "layer norm backward (gain and bias)" in one["ops_differ"]
    assert "| 1 thread | OMP_NUM_THREADS=1 |" in (tmp_path / "suite.md").read_text()


def repo_files():
    """Every file of the repository outside .git, bytecode caches aside (any import writes those)."""
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in (".git", "__pycache__")]
        found += [os.path.relpath(os.path.join(folder, f), ROOT) for f in files]
    return sorted(found)


def test_gpu_check_runs_every_step_in_tiny_mode(tmp_path, monkeypatch):
    """The prepared GPU check, at toy sizes on the CPU: every step runs and the JSON records it. On a
    machine with a GPU (is_available mocked True) the suite runs the same tiny steps on the CPU, takes
    the same time, runs no GPU check (that is `python bench/gpu.py`, 8 minutes) and writes nothing into
    the repository."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "a mocked GPU")  # the stamp names the machine's
    before = repo_files()
    out = gpu.gpu_check(gpu.GpuConfig(tiny=True, device="cpu", out=str(tmp_path / "gpu")))
    assert out["device"] == "cpu"
    assert [s for s, r in out["steps"].items() if not r["ok"]] == []
    assert set(out["steps"]) == set(gpu.GPU_STEPS) == {"tests", "train_gpt2_small", "pause_pretrain", "decode",
                                                         "default_comparison", "pauseft_smoke"}
    assert not any("compiled" in k for r in out["steps"].values() for k in r)  # no GPU path was taken
    assert out["steps"]["default_comparison"]["projected_seconds_4_seeds"] > 0
    saved = json.load(open(tmp_path / "gpu.json"))
    assert saved["steps"]["pauseft_smoke"]["eval"].endswith(".jsonl") and saved["tiny"] is True
    assert "| default_comparison |" in (tmp_path / "gpu.md").read_text()
    assert repo_files() == before
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu.main([]) == 2  # without a GPU the full check refuses to start, and writes nothing
    assert repo_files() == before


def test_gpu_check_says_up_front_when_compiling_cannot_work(tmp_path, monkeypatch, capsys):
    """Triton builds its kernels with a C compiler against Python's headers: without either, the check
    says so in one line before any step, instead of after a minute's wait inside one."""
    import shutil
    import sysconfig
    include = tmp_path / "include"
    include.mkdir()
    (include / "Python.h").write_text("")
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setattr(sysconfig, "get_paths", lambda *a, **k: {"include": str(include)})
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}" if name == "gcc" else None)
    assert gpu.compile_missing() is None
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert gpu.compile_missing().startswith("no C compiler (no cc, gcc or clang on the PATH)")
    monkeypatch.setenv("CC", "/opt/cc-that-is-not-there")
    assert gpu.compile_missing().startswith("no C compiler (CC=/opt/cc-that-is-not-there not found)")
    monkeypatch.delenv("CC")
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    (include / "Python.h").unlink()
    assert gpu.compile_missing().startswith(f"no Python headers ({include / 'Python.h'} is missing)")
    # the whole check on a (mocked) CUDA machine without the headers: one line up front, in the JSON too
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "a mocked GPU")
    out = gpu.gpu_check(gpu.GpuConfig(device="cuda", out=str(tmp_path / "check")),
                        [("noop", [sys.executable, "-c", "print('{}')"], 30)])
    said = capsys.readouterr().out.splitlines()
    assert said[1] == f"  compiled measurements skipped, eager ones still run: {gpu.compile_missing()}"
    assert out["compile"] == f"skipped: {gpu.compile_missing()}" and out["steps"]["noop"]["ok"]


def test_a_step_without_a_compiler_measures_eager_and_skips_compiled(monkeypatch, capsys):
    """The training-speed step on a (mocked) GPU where compiling cannot work: the eager numbers, and one
    line for the compiled ones; nothing is compiled."""
    calls = []

    def fake_bench_train(cfg, device, compiled, pause_frac=0.0):
        calls.append(compiled)
        return 1000.0, 1e12
    monkeypatch.setattr(gpu, "bench_train", fake_bench_train)
    monkeypatch.setattr(gpu, "peak_flops", lambda cfg, device: 1e13)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda *a: None)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a: 2**30)
    gpu.gpu_step("train_gpt2_small", True, 0.0, "cuda", "no C compiler (...)")
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert calls == [False]
    assert result == {"tok_s_eager": 1000.0, "mfu_eager": 0.1, "peak_mem_gb_eager": 1.0,
                      "compiled": "skipped: no C compiler (...)"}


def test_a_step_cut_off_at_its_limit_keeps_what_it_had_measured(tmp_path):
    """A step records each measurement as it makes it: the eager numbers of a step whose compile runs
    past its limit are in the JSON and the markdown, both while it runs and after it is killed."""
    stem = str(tmp_path / "check")
    step = (f"import sys, time; sys.path.insert(0, {ROOT!r}); from bench import gpu; r = {{}}; "
            "gpu.record(r, tok_s_eager=1234.0); time.sleep(1.5); gpu.record(r, peak_mem_gb_eager=2.0); "
            "time.sleep(60)")
    seen = []
    real_write = gpu.write_gpu_check

    def spy(out, stem):  # what the files hold at each write
        seen.append(json.loads(json.dumps(out["steps"])))
        real_write(out, stem)
    gpu.write_gpu_check = spy
    try:
        out = gpu.gpu_check(gpu.GpuConfig(tiny=True, device="cpu", out=stem),
                            [("slow_compile", [sys.executable, "-c", step], 10)])
    finally:
        gpu.write_gpu_check = real_write
    r = out["steps"]["slow_compile"]
    assert r["ok"] is False and r["error"] == "timed out after 10 s"
    assert r["tok_s_eager"] == 1234.0 and r["peak_mem_gb_eager"] == 2.0
    running = [s["slow_compile"] for s in seen if s["slow_compile"]["error"] == "running"]
    assert running and running[0] == {"ok": False, "error": "running", "tok_s_eager": 1234.0,
                                      "seconds": running[0]["seconds"]}  # written before the step ended
    assert json.load(open(stem + ".json"))["steps"]["slow_compile"]["tok_s_eager"] == 1234.0
    assert "| slow_compile | timed out after 10 s; tok_s_eager 1.23e+03, peak_mem_gb_eager 2 |" in open(stem + ".md").read()
