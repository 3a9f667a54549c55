"""The CUDA path, checked on a CPU through stand-ins: the meta device (a device that is not the CPU, so
a tensor left on it cannot be read on the host), torch.compile with the aot_eager backend and
fullgraph=True (what inductor would capture), a mocked torch.cuda, and gloo processes for DDP."""
import dataclasses
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from bench import gpu, shared
import common
import eval as evaluate
import train
from common import ConfigError, fingerprint, read_checkpoint
from data import PAUSE_ID
from model import GPT, GPTConfig
from pause import weighted_loss
from train import Config, load_checkpoint
from tiny import TINY

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def config(args):
    return common.parse_config(TINY + args, Config)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Every kind of checkpoint the project writes: a compact-vocab pretrain, its snapshot, a finetune
    of it, and a full-vocab pretrain from token files."""
    tmp = tmp_path_factory.mktemp("ckpts")
    pt = train.train(config(["--max_iters=6", "--eval_interval=3", "--snapshot_at=3", f"--out_dir={tmp}/pt",
                             "--pause_frac=0.1"]))["ckpt"]
    ft = train.train(config(["--phase=finetune", f"--init_from={pt}", "--n_pause=3", "--max_iters=3",
                             f"--out_dir={tmp}/ft"]))["ckpt"]
    for split in ("train", "val"):
        np.random.default_rng(0).integers(0, 50257, 3000).astype(np.uint16).tofile(tmp / f"{split}.bin")
    full = train.train(config(["--vocab=full", f"--data_dir={tmp}", "--max_iters=2", f"--out_dir={tmp}/full"]))["ckpt"]
    return {"compact pretrain": pt, "snapshot": f"{tmp}/pt/ckpt_3.pt", "finetune": ft, "full vocab": full}


@pytest.mark.parametrize("kind", ["compact pretrain", "snapshot", "finetune", "full vocab"])
def test_every_checkpoint_kind_loads_onto_another_device(checkpoints, kind):
    """Read on the CPU, then moved: nothing on the host is asked to read a device tensor (the vocab
    table of a compact-vocab checkpoint was a device tensor, and .numpy() of it failed on CUDA)."""
    on_cpu, cpu_vocab, _ = load_checkpoint(checkpoints[kind])
    model, vocab, ckpt = load_checkpoint(checkpoints[kind], "meta")
    assert {p.device.type for p in model.parameters()} == {"meta"}
    assert vocab.size == cpu_vocab.size == model.config.vocab_size
    assert (vocab.table is None) == (kind == "full vocab")
    if vocab.table is not None:
        assert isinstance(vocab.table, np.ndarray) and (vocab.table == cpu_vocab.table).all()
    assert vocab.pause_id == cpu_vocab.pause_id and vocab.to_gpt2(np.array([vocab.pause_id]))[0] == PAUSE_ID
    assert all(t.device.type == "cpu" for t in ckpt["model"].values())  # what was read stays on the host


def test_resume_and_init_from_start_on_another_device(checkpoints, tmp_path):
    pt, ft = checkpoints["compact pretrain"], checkpoints["finetune"]
    cfg = config(["--phase=finetune", f"--init_from={pt}", "--n_pause=3", f"--out_dir={tmp_path}"])
    model, vocab, resumed, fp = train.init_model(cfg, "meta")
    assert next(model.parameters()).device.type == "meta" and resumed is None
    assert fp == fingerprint(read_checkpoint(pt)["model"])  # fingerprinted on the host, before the move
    assert (vocab.table == load_checkpoint(pt)[1].table).all()
    saved = Config(**read_checkpoint(ft)["config"])
    resume = dataclasses.replace(saved, resume=True, out_dir=os.path.dirname(ft))
    model, vocab, resumed, fp = train.init_model(resume, "meta")
    assert next(model.parameters()).device.type == "meta" and resumed["step"] == 3
    assert fp == read_checkpoint(ft)["init_fingerprint"]


def test_eval_ckpt_scores_the_model_on_the_device_it_names(checkpoints, monkeypatch):
    seen = {}

    def fake_score(model, vocab, cfg, examples, m_inf, *args):
        seen.update(device=next(model.parameters()).device.type, table=vocab.table, m_inf=m_inf)
        return {"score": 0.5, "metric": "exact match"}
    monkeypatch.setattr(evaluate, "score", fake_score)
    ecfg = evaluate.EvalConfig(ckpt=checkpoints["finetune"], device="meta", progress=False)
    assert evaluate.score_one(ecfg) == 0.5
    assert seen["device"] == "meta" and seen["m_inf"] == 3
    assert (seen["table"] == load_checkpoint(checkpoints["finetune"])[1].table).all()


@pytest.mark.parametrize("device, message", [("cuda", "not available"), ("tpu", "device must be"),
                                             ("cuda:x", "device must be")])
def test_a_device_this_machine_lacks_is_one_line(device, message, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=message):
        train.check_config(config([f"--device={device}", f"--out_dir={tmp_path}"]))
    p = subprocess.run([sys.executable, "train.py", *TINY, f"--device={device}", f"--out_dir={tmp_path}/o"],
                       cwd=ROOT, capture_output=True, text=True)
    if not torch.cuda.is_available() or device != "cuda":
        assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and message in p.stderr
        assert not (tmp_path / "o").exists()

# --- one graph per training step ---------------------------------------------------------------------


class GraphRecorder:
    """A torch.compile backend: aot_eager, counting the graphs it is given and recording every value whose
    shape depends on the data (an unbacked symbol such as u0: x[mask] has one; on a GPU the host must
    wait for the device to learn it, and without fullgraph dynamo breaks the graph there)."""

    def __init__(self):
        from torch._dynamo.backends.registry import lookup_backend
        self.aot_eager, self.graphs, self.data_dependent = lookup_backend("aot_eager"), 0, []

    def __call__(self, gm, example_inputs):
        from torch.fx.experimental.symbolic_shapes import free_unbacked_symbols
        self.graphs += 1
        for node in gm.graph.nodes:
            value = node.meta.get("example_value")
            if isinstance(value, torch.Tensor) and free_unbacked_symbols(value):
                self.data_dependent.append(f"{node.target} {tuple(value.shape)}")
        return self.aot_eager(gm, example_inputs)


def test_training_step_is_one_graph_for_any_pattern_of_ignored_targets():
    """fullgraph=True fails on any graph break; the recorder sees a recompile and any shape that depends
    on the data (a host sync on a GPU); batches of one shape with 1, many and all but one targets ignored."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=16, vocab_size=50, n_layer=2, n_head=2, n_embd=16))
    counter = GraphRecorder()
    compiled = torch.compile(model, backend=counter, fullgraph=True)
    g = torch.Generator().manual_seed(0)
    for frac in (0.0, 0.5, 0.9, 0.99):
        x, y = torch.randint(0, 50, (4, 16), generator=g), torch.randint(0, 50, (4, 16), generator=g)
        y[torch.rand(4, 16, generator=g) < frac] = -1
        y[0, 0] = 7  # at least one target
        w = torch.where(torch.rand(4, 16, generator=g) < 0.5, 0.25, 1.0)
        logits, loss = compiled(x, y)
        eager_logits, eager_loss = model(x, y)
        torch.testing.assert_close(loss, eager_loss)
        torch.testing.assert_close(weighted_loss(logits, y, w), weighted_loss(eager_logits, y, w))
        loss.backward()
    assert counter.graphs == 1  # one graph, never recompiled
    assert counter.data_dependent == []  # no shape the host must wait for


def test_weighted_loss_compiles_to_one_graph():
    torch._dynamo.reset()
    counter = GraphRecorder()
    fn = torch.compile(weighted_loss, backend=counter, fullgraph=True)
    for kept in (3, 9):
        logits, y, w = torch.randn(2, 8, 11), torch.full((2, 8), -1), torch.full((2, 8), 0.5)
        y.view(-1)[:kept] = torch.arange(kept)
        torch.testing.assert_close(fn(logits, y, w), weighted_loss(logits, y, w))
    assert counter.graphs == 1 and counter.data_dependent == []

# --- DDP --------------------------------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_nonfinite_loss_on_one_rank_stops_every_rank(tmp_path):
    """Rank 1 alone sees a NaN loss (its gradients stay finite, so rank 0 never sees one itself): both
    processes must stop with the same one-line error, not leave rank 0 waiting in an all-reduce."""
    (tmp_path / "poisoned.py").write_text(
        "import os, sys\n"
        f"sys.path.insert(0, {ROOT!r})\n"
        "import model, train\n"
        "forward = model.GPT.forward\n"
        "def poisoned(self, idx, targets=None, cache=None):\n"
        "    logits, loss = forward(self, idx, targets, cache)\n"
        "    if self.training and os.environ['RANK'] == '1':\n"
        "        loss = loss + float('nan')  # a NaN value; the gradients are unchanged\n"
        "    return logits, loss\n"
        "model.GPT.forward = poisoned\n"
        "sys.exit(train.main(sys.argv[1:]))\n")
    port, procs = free_port(), []
    for rank in range(2):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen(
            [sys.executable, str(tmp_path / "poisoned.py"), *TINY, "--device=cpu", "--max_iters=30",
             "--grad_accum=2", "--log_interval=5", "--eval_interval=100", f"--out_dir={tmp_path}/o"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        results = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 1, err[-1500:]
        assert err.strip().splitlines() == ["train.py: step 0: training loss is not finite; stopped, "
                                            f"{tmp_path}/o/ckpt.pt keeps the last good checkpoint"]


def test_ddp_backend_follows_the_device_the_run_uses(monkeypatch):
    """gloo for a CPU run even where CUDA exists; nccl and one GPU per process for a CUDA run."""
    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.append(("set_device", d)))
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda backend: calls.append(backend))
    for key, value in (("RANK", "1"), ("LOCAL_RANK", "1"), ("WORLD_SIZE", "2")):
        monkeypatch.setenv(key, value)
    assert common.setup_distributed(Config(device="cpu", grad_accum=2)) == (1, 2, "cpu")
    assert calls == ["gloo"]
    assert common.setup_distributed(Config(device="auto", grad_accum=2)) == (1, 2, "cuda:1")
    assert calls == ["gloo", "nccl", ("set_device", "cuda:1")]


def test_ddp_wraps_the_model_before_compiling(monkeypatch):
    made = []
    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel",
                        lambda m, device_ids=None: made.append(("ddp", m, device_ids)) or ("ddp", m))
    monkeypatch.setattr(torch, "compile", lambda m: made.append(("compile", m)) or ("compiled", m))
    model = GPT(GPTConfig(block_size=8, vocab_size=16, n_layer=1, n_head=2, n_embd=8))
    step_model, ddp = common.wrap_model(model, True, "cuda:0", 2)
    assert step_model == ("compiled", ("ddp", model)) and ddp == ("ddp", model)
    assert made[0] == ("ddp", model, ["cuda:0"])
    assert common.wrap_model(model, True, "cpu", 1) == (model, None)  # no compile on a CPU

# --- precision and copies ------------------------------------------------------------------------


@pytest.mark.parametrize("bf16, expected", [(True, torch.bfloat16), (False, torch.float16)])
def test_auto_precision_follows_the_gpu(bf16, expected, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: bf16)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # else autocast and the scaler switch off
    ctx, dtype, scaler = common.precision("auto", "cuda")
    assert dtype is expected and ctx.fast_dtype is expected
    assert scaler.is_enabled() == (expected is torch.float16)  # float16 needs its gradient scaler
    _, dtype, scaler = common.precision("auto", "cpu")
    assert dtype is torch.float32 and not scaler.is_enabled()
    with pytest.raises(ConfigError, match="dtype must be"):
        common.precision("fp8", "cuda")


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_training_in_16_bits_on_cpu(dtype, tmp_path, monkeypatch):
    """The autocast path (bfloat16) and the float16 + gradient scaler path, on the CPU: the forward runs
    in that dtype, the loss falls, and float16's scaler state is saved for an exact resume."""
    seen, forward = set(), GPT.forward

    def spy(self, idx, targets=None, cache=None):
        logits, loss = forward(self, idx, targets, cache)
        seen.add(logits.dtype)
        return logits, loss
    monkeypatch.setattr(GPT, "forward", spy)
    cfg = config([f"--dtype={dtype}", "--max_iters=40", "--eval_interval=40", "--learning_rate=3e-3",
                  f"--out_dir={tmp_path}"])
    before = train.train(dataclasses.replace(cfg, max_iters=0, out_dir=f"{tmp_path}/start"))["val_loss"]
    out = train.train(cfg)
    assert seen == {getattr(torch, dtype)}
    assert out["val_loss"] < before - 0.3
    scaler = read_checkpoint(out["ckpt"])["scaler"]
    assert (scaler.get("scale", 0) > 0) == (dtype == "float16")


def test_batches_reach_a_gpu_from_pinned_memory(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda t: calls.append("pin") or t)
    monkeypatch.setattr(torch.Tensor, "to", lambda t, device, non_blocking=False: calls.append((device, non_blocking)) or t)
    common.to_device(np.zeros(3, dtype=np.int64), "cuda:0")
    assert calls == ["pin", ("cuda:0", True)]
    calls.clear()
    common.to_device(np.zeros(3, dtype=np.int64), "cpu")
    assert calls == [("cpu", True)]  # nothing to pin for the CPU

# --- the GPU check ------------------------------------------------------------------------------------


def test_gpu_check_survives_a_step_past_its_limit(tmp_path):
    """A step killed at its limit is recorded as such and the next still runs; the JSON is on disk
    after every step (the second step reads what the first left there)."""
    stem = str(tmp_path / "check")
    steps = [("slow", [sys.executable, "-c", "import time; print('{}'); time.sleep(60)"], 2),
             ("reader", [sys.executable, "-c", f"import json; print(json.dumps({{'seen': list(json.load("
                                                f"open({stem + '.json'!r}))['steps'])}}))"], 30),
             ("broken", [sys.executable, "-c", "raise SystemExit('no GPU here')"], 30)]
    out = gpu.gpu_check(gpu.GpuConfig(tiny=True, out=stem), steps)
    assert out["steps"]["slow"] == {"ok": False, "error": "timed out after 2 s", "seconds": pytest.approx(2, abs=3)}
    assert out["steps"]["reader"]["ok"] and out["steps"]["reader"]["seen"] == ["slow"]
    assert out["steps"]["broken"]["error"] == "exit 1: no GPU here"
    assert "| slow | timed out after 2 s |" in open(stem + ".md").read()
    assert sum(gpu.GPU_STEPS.values()) <= 8 * 60  # the real check's limits add up to 8 minutes


def test_mfu_uses_the_peak_of_the_gpu_it_runs_on(monkeypatch):
    names = {"NVIDIA H100 80GB HBM3": 989e12, "NVIDIA H100 PCIe": 756e12, "NVIDIA A100-SXM4-80GB": 312e12,
             "NVIDIA L4": 121e12, "NVIDIA L40S": 362e12, "Tesla T4": 65e12, "Some Future GPU": None}
    for name, peak in names.items():
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None, n=name: n)
        assert shared.peak_flops(shared.BenchConfig(), "cuda") == peak, name
    assert shared.peak_flops(shared.BenchConfig(peak_flops=1e15), "cuda") == 1e15  # overridden
    assert shared.peak_flops(shared.BenchConfig(), "cpu") is None


def test_a_checkpoint_whose_weights_do_not_fit_is_one_line(checkpoints, tmp_path):
    ckpt = read_checkpoint(checkpoints["finetune"])
    ckpt["model_args"]["n_embd"] = 32  # the weights are 16 wide
    torch.save(ckpt, tmp_path / "bad.pt")
    with pytest.raises(common.CheckpointError, match="its weights do not fit its model"):
        load_checkpoint(str(tmp_path / "bad.pt"), "meta")
