"""
The prepared check for a machine with one CUDA GPU, sized to end within 8 minutes:

  python bench/gpu.py --out=results/gpu_check          # on the GPU machine
  python bench/gpu.py --tiny=True --out=/tmp/gpu_tiny   # anywhere, at toy sizes, in about a minute
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # the repo's own files
from bench.shared import BenchConfig, bench_train, cli, peak_flops, random_gpt2_folder, stamp, timed  # noqa: E402
from common import ConfigError, pick_device  # noqa: E402
from model import GPT, GPTConfig  # noqa: E402


@dataclass
class GpuConfig:
    device: str = "auto"
    peak_flops: float = 0.0  # FLOP/s for MFU; 0: this GPU's dense bf16 peak (bench.shared.GPU_PEAK_FLOPS)
    out: str = ""            # write <out>.json and <out>.md (default gpu_check.*)
    tiny: bool = False       # the same steps at toy sizes (what CI runs on a CPU)


# the steps of the GPU check and the seconds each may take: they add up to 8 minutes, so the whole check
# ends within that (plus process starts) whatever happens; a step past its limit is killed and recorded
# with what it had measured by then. No GPU has run the check yet: each limit is sized from what its
# step does, and the first run's seconds (recorded next to each limit) should replace these reasons.
GPU_STEPS = {
    # four test files, 160 s one after another on a 2-core CPU: here one process per file, side by side
    # on the GPU machine's cores, so the step takes about its slowest file
    "tests": 100,
    # GPT-2 small eager (12 steps of 16 x 1024 tokens: seconds), then compiled: a first compile on a
    # fresh machine can take a minute before its first step
    "train_gpt2_small": 110,
    # the same graph (one graph for any pattern of ignored targets), so its compile mostly reads
    # inductor's on-disk cache written by the step before
    "pause_pretrain": 70,
    # 4 x 32 tokens of a bf16 GPT-2 small with the KV cache: a few seconds after the process starts
    "decode": 20,
    # one seed of the default, eager (see default_comparison): 1 pretraining of 300 steps and 4
    # finetunings of 3,000 or more steps of a 3-layer model, a few ms each, plus their evaluations
    "default_comparison": 130,
    # a random GPT-2-shaped folder, 30 eager finetuning steps, then eval.py on the checkpoint
    "pauseft_smoke": 50,
}
# a step writes what it has measured so far (JSON) to the file this variable names, as it goes
PARTIAL = "NANOPAUSE_GPU_STEP_PARTIAL"


def compile_missing():
    """Why torch.compile cannot build GPU kernels on this machine, or None. Triton compiles a small C
    launcher for every kernel with the machine's C compiler (CC, else cc, gcc or clang on the PATH)
    against Python's headers; without either the first compiled step fails after a long wait."""
    cc = os.environ.get("CC")
    if not (shutil.which(cc) if cc else any(shutil.which(c) for c in ("cc", "gcc", "clang"))):
        return "no C compiler (" + (f"CC={cc} not found" if cc else "no cc, gcc or clang on the PATH") + \
            "): Triton needs one to build its kernels (e.g. apt-get install gcc)"
    header = os.path.join(sysconfig.get_paths()["include"], "Python.h")
    if not os.path.exists(header):
        return f"no Python headers ({header} is missing): Triton needs them (e.g. apt-get install python3-dev)"
    return None


def record(results, **measured):
    """Add measured values to a step's results and write them all to the file PARTIAL names (whole, then
    renamed into place), so a step killed at its limit keeps what it measured (eager numbers survive a
    compile that times out)."""
    results.update(measured)
    path = os.environ.get(PARTIAL)
    if path:
        with open(path + ".tmp", "w") as f:
            json.dump(results, f)
        os.replace(path + ".tmp", path)
    return results


def read_partial(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def gpu_check(cfg, steps=None):
    """One script for a machine with one CUDA GPU, sized to end within 8 minutes, or the same steps at toy
    sizes on a CPU (--tiny=True; what CI runs). Each step runs in its own process under its own time
    limit (GPU_STEPS), and <out>.json and <out>.md are rewritten after every step, so a check cut off at
    any moment keeps what finished. The steps: (1) tests that train and evaluate, on the GPU; (2) GPT-2
    small (124M, block 1024) training tokens/s, MFU against this GPU's peak, and peak memory, eager and
    compiled; (3) the same with pause pretraining (pause_frac 0.1: the number of supervised targets
    changes every step); (4) KV-cached decode tokens/s; (5) the default comparison with one seed, eager,
    timed, and its 4-seed time projected; (6) a PauseFT smoke run from a GPT-2-shaped model on a GSM8k
    fixture. A step records each measurement as it makes it (record), and they reach the output files
    while it runs. Where torch.compile cannot work (compile_missing) it says so before any step, and
    the compiled measurements are skipped.

    """
    device = pick_device(cfg.device)
    if not device.startswith("cuda") and not cfg.tiny:
        raise ConfigError("the gpu suite needs a CUDA device; --tiny=True runs its steps at toy sizes anywhere")
    cuda = device.startswith("cuda")
    missing = compile_missing() if cuda else None  # said up front, not after a minute's wait in a step
    if steps is None:  # (name, command, seconds allowed); each step's last line of output is its JSON
        worker = [sys.executable, os.path.abspath(__file__), "_step"]
        steps = [(name, worker + [name, str(cfg.tiny), str(cfg.peak_flops), device, missing or ""], limit)
                 for name, limit in GPU_STEPS.items()]
    stem, t_all = cfg.out or "gpu_check", time.time()
    out = {**stamp("gpu"), "tiny": cfg.tiny, "device": device, "limits": {n: lim for n, _, lim in steps},
           "compile": "not on this device" if not cuda else f"skipped: {missing}" if missing else "ok", "steps": {}}
    print(f"gpu check on {device}{' (tiny sizes)' if cfg.tiny else ''}", flush=True)
    if missing:
        print(f"  compiled measurements skipped, eager ones still run: {missing}", flush=True)
    for name, command, limit in steps:
        t = time.time()

        def so_far(partial):  # a step's measurements as they come, in the output files at once
            out["steps"][name] = {"ok": False, "error": "running", **partial, "seconds": time.time() - t}
            out["seconds"] = time.time() - t_all
            write_gpu_check(out, stem)
        out["steps"][name] = run_step(command, limit, so_far)
        out["steps"][name]["seconds"] = time.time() - t
        out["seconds"] = time.time() - t_all
        r = out["steps"][name]
        print(f"  {name}: {'ok' if r['ok'] else r['error']} ({r['seconds']:.0f}s)", flush=True)
        write_gpu_check(out, stem)
    print(open(stem + ".md").read())
    return out


def run_step(command, limit, so_far=None):
    """Run one step's command in a process group of its own, killed whole after limit seconds (the
    step's own children too); {"ok": True, **its JSON} or {"ok": False, "error": ..., **what it had
    measured}. so_far(partial) is called with the step's measurements each time they grow."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "partial.json")
        p = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True, env={**os.environ, PARTIAL: path})
        deadline, seen = time.time() + limit, {}
        while True:
            try:  # wake every second to pass on new measurements (communicate keeps the output read so far)
                stdout, stderr = p.communicate(timeout=max(0.01, min(1.0, deadline - time.time())))
                break
            except subprocess.TimeoutExpired:
                partial = read_partial(path)
                if so_far and partial and partial != seen:
                    seen = partial
                    so_far(partial)
                if time.time() >= deadline:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.communicate()
                    return {**read_partial(path), "ok": False, "error": f"timed out after {limit} s"}
        partial = read_partial(path)
    lines = stdout.strip().splitlines()
    if p.returncode or not lines:
        why = (stderr.strip() or stdout.strip() or "failed").splitlines()[-1]
        return {**partial, "ok": False, "error": f"exit {p.returncode}: {why[:300]}"}
    try:
        return {"ok": True, **json.loads(lines[-1])}
    except json.JSONDecodeError:
        return {**partial, "ok": False, "error": f"no JSON result: {lines[-1][:300]}"}


def write_gpu_check(out, stem):
    """<stem>.json and <stem>.md of the check so far (each written whole, then renamed into place)."""
    lines = ["| step | result | seconds (limit) |", "|---|---|---|"]
    for name, r in out["steps"].items():
        values = ", ".join(f"{k} {v:,.3g}" if isinstance(v, float) else f"{k} {v}"
                           for k, v in r.items() if k not in ("ok", "seconds", "error"))
        shown = "; ".join(x for x in (r.get("error"), values) if x)  # a step cut off shows what it measured
        lines.append(f"| {name} | {shown} | {r['seconds']:.0f} ({out['limits'][name]}) |")
    m = out["machine"]
    md = (f"`{out['command']}` at commit {out['commit']} on {m['gpu'] or m['cpu']}, torch {m['torch']}, "
          f"{out['seconds']:.0f} s\n\n" + "\n".join(lines) + "\n")
    os.makedirs(os.path.dirname(os.path.abspath(stem)), exist_ok=True)
    for path, text in ((stem + ".json", json.dumps(out, indent=2)), (stem + ".md", md)):
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)


def gpu_step(name, tiny, peak, device, missing=""):
    """One step of the GPU check, in its own process; records each measurement as it is made (record)
    and prints its result as one JSON line. missing: why compiling cannot work here ("" if it can)."""
    cuda, results = device.startswith("cuda"), {}

    def run(argv):
        p = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True)
        if p.returncode:
            raise RuntimeError(f"{argv[0]}: " + ((p.stderr or p.stdout).strip().splitlines() or ["failed"])[-1])
        return p.stdout

    def tests():
        picked = (["tests/test_pause.py::test_answer_appends_pauses_and_reads_after_them"] if tiny else
                  ["tests/test_gpu_path.py", "tests/test_model.py", "tests/test_pause.py", "tests/test_train.py"])
        # one pytest per file, side by side, each on its share of the cores (they took 160 s one after
        # another on 2 cores); each file's summary is recorded as it ends
        threads = str(max(1, (os.cpu_count() or 2) // len(picked)))
        env = {**os.environ, "OMP_NUM_THREADS": threads, "PYTHONDONTWRITEBYTECODE": "1"}
        procs = {f: subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
                 for f in picked}
        failed = []
        for f, p in procs.items():
            summary = (p.communicate()[0].strip().splitlines() or ["no output"])[-1]
            record(results, **{f"tests {f.split('::')[0]}": summary})
            failed += [f"{f}: {summary}"] if p.returncode else []
        if failed:
            raise RuntimeError("; ".join(failed))
        return results

    def train_speed(pause_frac=0.0):
        shape = (dict(n_layer=2, n_head=2, n_embd=64, block_size=64, batch_size=2, train_steps=2) if tiny else
                 dict(n_layer=12, n_head=12, n_embd=768, block_size=1024, batch_size=16, train_steps=10))
        c = BenchConfig(**shape, peak_flops=peak)
        top = peak_flops(c, device)
        for compiled in (False, True) if cuda else (False,):  # eager first: its numbers are kept if compiling fails
            key = "compiled" if compiled else "eager"
            if compiled and missing:
                record(results, compiled=f"skipped: {missing}")
                continue
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            tok_s, flops = bench_train(c, device, compiled, pause_frac)
            record(results, **{f"tok_s_{key}": tok_s})
            if top:
                record(results, **{f"mfu_{key}": flops / top})
            if cuda:
                record(results, **{f"peak_mem_gb_{key}": torch.cuda.max_memory_allocated() / 2**30})
        if cuda and not missing:
            record(results, graphs_compiled=torch._dynamo.utils.counters["stats"]["unique_graphs"])
        return results

    def decode_speed():
        shape = dict(n_layer=2, n_head=2, n_embd=64, block_size=128) if tiny else \
            dict(n_layer=12, n_head=12, n_embd=768, block_size=1024)
        torch.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=50304, bias=False, **shape)).to(device).eval()
        model = model.to(torch.bfloat16) if cuda else model
        prompt = torch.randint(0, 50257, (1, 64), device=device)
        with torch.no_grad():
            s = timed(lambda: model.generate(prompt, 32), device, 3)
        return record(results, decode_tok_s=32 / s)

    def default_comparison():
        with tempfile.TemporaryDirectory() as tmp:
            args = [f"--out_dir={tmp}/default", "--progress=False", "--plot=False", "--seeds=1", f"--device={device}"]
            if tiny:  # the default's variants at toy sizes
                for phase, extra in (("pretrain", "n_pretrain = 400\nmax_iters = 10\n"),
                                     ("finetune", "n_train = 200\nmax_iters = 10\n")):
                    with open(f"{tmp}/{phase}.py", "w") as f:
                        f.write("task = 'keyparity'\nn_layer = 1\nn_head = 2\nn_embd = 16\nblock_size = 40\n"
                                "batch_size = 8\nn_val = 40\nn_test = 60\neval_iters = 2\neval_interval = 5\n" + extra)
            else:
                # The default's configs, eager. Compiling its tiny runs costs more than it can save: the
                # default's model (3 layers x 64 wide, compact vocab) took 62 s to compile for a
                # finetuning batch (64 x 22) and 63 s for a pretraining one (32 x 40), against eager
                # steps of 40 and 56 ms and compiled ones no faster (77 and 70 ms), with inductor on a
                # 2-core AMD EPYC (torch 2.13.0 CPU, shared with other runs). On a GPU an eager step
                # of this model is a few ms of kernel launches, so even a compiled step twice as fast
                # saves seconds over a 3,000-step run, while every run (5 per seed) compiles afresh.
                for phase in ("pretrain", "finetune"):
                    with open(os.path.join(ROOT, "configs", f"{phase}.py")) as f:
                        text = f.read()
                    with open(f"{tmp}/{phase}.py", "w") as f:
                        f.write(text + "compile = False  # eager: see bench/gpu.py, default_comparison\n")
            args += [f"--pretrain_config={tmp}/pretrain.py", f"--finetune_config={tmp}/finetune.py"]
            t = time.time()
            run(["eval.py", *args])
            [found] = [f for f in os.listdir(f"{tmp}/default") if f.startswith("results") and f.endswith(".json")]
            rows = json.load(open(f"{tmp}/default/{found}"))["rows"]
            wall = time.time() - t
            # one seed's jobs run one after another on a GPU, so 4 seeds take about 4 times as long
            return record(results, wall_seconds_1_seed=wall, projected_seconds_4_seeds=4 * wall,
                          **{f"{r['variant']} M_inf={r['M_inf']}": r["accuracy"] for r in rows
                             if r["M_inf"] == r["M_ft"]})

    def pauseft_smoke():
        with tempfile.TemporaryDirectory() as tmp:
            shape = dict(n_layer=2, n_head=2, n_embd=16, n_positions=64) if tiny else \
                dict(n_layer=12, n_head=12, n_embd=768, n_positions=1024)
            random_gpt2_folder(f"{tmp}/gpt2", **shape)
            with open(f"{tmp}/gsm8k.jsonl", "w") as f:
                for i in range(64):
                    f.write(json.dumps({"question": f"Tom has {i} apples and buys {i + 3}. How many?",
                                        "answer": f"{i} + {i + 3} = {2 * i + 3}\n#### {2 * i + 3}"}) + "\n")
            t = time.time()
            run(["train.py", f"--init_from=gpt2:{tmp}/gpt2", "--vocab=full", "--phase=finetune", "--task=gsm8k",
                 f"--train_file={tmp}/gsm8k.jsonl", f"--test_file={tmp}/gsm8k.jsonl", "--n_val=8",
                 f"--n_pause={4 if tiny else 10}", "--batch_size=4", f"--max_iters={3 if tiny else 30}",
                 "--eval_iters=1", "--max_answer_tokens=4", "--progress=False", f"--out_dir={tmp}/ft",
                 f"--device={device}", "--compile=False"])  # eager: compiled training is steps 2 and 3
            record(results, train_seconds=time.time() - t)
            return record(results, eval=run(["eval.py", f"--ckpt={tmp}/ft/ckpt.pt", "--progress=False",
                                             f"--device={device}"]).strip().splitlines()[-1])

    fns = {"tests": tests, "train_gpt2_small": train_speed, "pause_pretrain": lambda: train_speed(0.1),
           "decode": decode_speed, "default_comparison": default_comparison, "pauseft_smoke": pauseft_smoke}
    print(json.dumps(fns[name]()))


def main(argv):
    if argv[:1] == ["_step"]:  # one step, in its own process
        return gpu_step(argv[1], argv[2] == "True", float(argv[3]), argv[4], *argv[5:6])
    return cli("bench/gpu.py", GpuConfig, gpu_check, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
