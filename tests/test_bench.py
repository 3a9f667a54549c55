"""The instruments: bench/repro.py finds what changes the bits on this CPU; bench/gpu.py runs every step at toy sizes."""
import pytest
import torch

from bench import gpu, repro
from common import pick_device


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


def test_gpu_check_runs_every_step_in_tiny_mode(tmp_path):
    """The prepared GPU check, at toy sizes on the CPU: every step runs and the JSON records it."""
    import json
    out = gpu.gpu_check(gpu.GpuConfig(tiny=True, out=str(tmp_path / "gpu")))
    assert [s for s, r in out["steps"].items() if not r["ok"]] == []
    assert set(out["steps"]) == set(gpu.GPU_STEPS) == {"tests", "train_gpt2_small", "pause_pretrain", "decode",
                                                         "default_comparison", "pauseft_smoke"}
    assert out["steps"]["default_comparison"]["projected_seconds_4_seeds"] > 0
    saved = json.load(open(tmp_path / "gpu.json"))
    assert saved["steps"]["pauseft_smoke"]["eval"].endswith(".jsonl") and saved["tiny"] is True
    assert "| default_comparison |" in (tmp_path / "gpu.md").read_text()
    assert gpu.main([]) == (0 if pick_device("auto").startswith("cuda") else 2)
