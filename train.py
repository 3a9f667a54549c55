"""
One plain training loop for both phases of nanopause:
  pretrain  language modelling on a token stream; pause_frac > 0 inserts random pauses (PausePT)
  finetune  (prefix, target) pairs, loss on the target only; n_pause = M_ft pauses after each prefix

Run it (config files only override fields of Config below; --key=value overrides go on top):
  python train.py configs/pretrain.py --pause_frac=0.1 --out_dir=out/pt_pause
  python train.py configs/finetune.py --init_from=out/pt_pause/ckpt.pt --n_pause=8 --out_dir=out/ft
  python train.py --max_iters=20 --n_layer=1 --n_embd=32 --out_dir=out/tiny   # seconds on a CPU
  python train.py configs/gpt2_124m.py --data_dir=data/owt --pause_frac=0.1  # GPT-2 small, one GPU
  torchrun --standalone --nproc_per_node=8 train.py configs/gpt2_124m.py --data_dir=data/owt  # 8 GPUs
"""
import dataclasses
import math
import os
import shutil
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

import downstream
from common import (CheckpointError, ConfigError, TrainingError, check_finite, check_out_dir, check_writable, code_hashes,
                    commit, file_hash, fingerprint, machine, parse_config, pick_device, precision, read_checkpoint,
                    run_cli, save_checkpoint, setup_distributed, to_device, wrap_model)
from data import PAUSE_ID, TOKENIZER_NAME, Vocab, data_files, get_encoding, make_batcher, phase_data, task_vocab
from decode import fast
from model import GPT, GPTConfig
from pause import answer, answer_cot, repeat_prompt, weighted_loss
from tasks import TASKS, make_examples


@dataclass
class Config:
    # run
    out_dir: str = "out/run"       # ckpt.pt is written here
    phase: str = "pretrain"        # "pretrain" (language modelling) or "finetune" (prefix -> target)
    init_from: str = "scratch"     # "scratch", a checkpoint path, or "gpt2:<HF folder or hub name>"
    resume: bool = False           # continue exactly from <out_dir>/ckpt.pt (model, optimizer, step)
    overwrite: bool = False        # replace a checkpoint already in out_dir (without it, or resume, refused)
    seed: int = 1337               # model init, batch order and pause positions
    device: str = "auto"           # auto picks cuda, then mps, then cpu
    dtype: str = "auto"            # float32, bfloat16 or float16 (autocast); auto: bf16 on a GPU that has it,
                                   # else float16 with a gradient scaler; float32 on a CPU
    # embedded data: a synthetic task from data.TASKS, generated from data_seed
    task: str = "keysum"           # a synthetic task (data.TASKS) or a downstream one (downstream.LOADERS)
    train_file: str = ""           # downstream finetuning: the source's train file (its last n_val are val)
    test_file: str = ""            # downstream: the file eval.py --ckpt scores on
    max_answer_tokens: int = 16    # downstream: tokens generated per answer at evaluation
    data_seed: int = 0             # the same data for every model seed
    n_pretrain: int = 50000        # task instances written out as the pretraining corpus
    n_train: int = 20000           # finetuning pairs
    n_val: int = 1000              # validation pairs (val loss; the pretraining val corpus too)
    n_test: int = 2000             # test pairs (eval.py only)
    vocab: str = "compact"         # "compact": only the ids the task's text can use; "full": GPT-2's 50304
    data_dir: str = ""             # pretrain on <data_dir>/train.bin, val.bin (uint16 GPT-2 ids) instead
    # pauses
    pause_frac: float = 0.0        # pretrain: pauses inserted per token (the paper: 0.10); 0 = StdPT
    n_pause: int = 0               # finetune: M_ft pauses appended to each prefix; 0 = StdFT
    n_pause_min: int = -1          # finetune: >= 0 mixes pause counts, each example its own M in [this, n_pause]
    placement: str = "append"      # finetune: "append" pauses after the prefix (the paper) or "prepend"
    hints: bool = False            # finetune: train the pause slots on the task's hint targets (not the paper)
    input_hints: bool = False      # finetune: train the prompt positions on the task's input hints (a control)
    hint_weight: float = 1.0       # loss weight of a hinted position (answer positions weigh 1)
    # the alternatives to pauses (controls, not the paper; eval.py --variants=controls)
    filler: str = "pause"          # finetune: what the n_pause slots hold, "pause" or "dot" ('.': trained filler)
    repeat: bool = False           # finetune: the prompt written twice (no pauses), the answer after it
    cot: bool = False              # finetune: the task's hints emitted as tokens before the answer (chain of thought)
    # model (ignored with init_from=<checkpoint>: the checkpoint's shape is used)
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    dropout: float = 0.0
    bias: bool = True
    n_loop: int = 1                # the blocks run n_loop times with shared weights (looped depth, a control)
    # optimisation
    batch_size: int = 64
    grad_accum: int = 1            # micro-batches per optimizer step
    max_iters: int = 1000          # optimizer steps
    learning_rate: float = 1e-3
    min_lr: float = 1e-4           # cosine decay ends here at max_iters
    warmup_iters: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0         # 0 = off
    eval_interval: int = 250       # val loss (and checkpoint) every this many steps and at the end
    eval_iters: int = 20           # val batches per evaluation
    snapshot_at: int = -1          # also evaluate at this step and keep its model in ckpt_<step>.pt
    curve: bool = True             # finetuning an embedded task: exact match on val at each evaluation
                                   # (greedy answers through pause.answer; False: val loss only)
    log_interval: int = 10         # refresh the progress bar every this many steps
    progress: bool = True          # tqdm bar
    compile: bool = True           # torch.compile the training step on CUDA (ignored on CPU/MPS)


def check_config(cfg):
    """Every setting of a run is validated here, once, before anything is trained or written."""
    choices = {"phase": ("pretrain", "finetune"), "vocab": ("compact", "full"), "placement": ("append", "prepend"),
               "dtype": ("auto", "float32", "bfloat16", "float16"), "filler": ("pause", "dot")}
    for key, allowed in choices.items():
        if getattr(cfg, key) not in allowed:
            raise ConfigError(f"{key} must be one of {allowed}, got {getattr(cfg, key)!r}")
    if cfg.task not in TASKS and cfg.task not in downstream.LOADERS:
        raise ConfigError(f"unknown task {cfg.task!r}; known: {', '.join([*TASKS, *downstream.LOADERS])}")
    if not 0.0 <= cfg.pause_frac <= 0.9:
        raise ConfigError(f"pause_frac must be in [0, 0.9], got {cfg.pause_frac}")
    if not 0 <= cfg.n_pause < 10_000:
        raise ConfigError(f"n_pause must be in [0, 10000), got {cfg.n_pause}")
    if cfg.max_iters < 0 or min(cfg.batch_size, cfg.grad_accum, cfg.eval_interval, cfg.eval_iters, cfg.log_interval) < 1:
        raise ConfigError("max_iters must be >= 0; batch_size, grad_accum, eval_interval, eval_iters, "
                          "log_interval >= 1")
    if min(cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.block_size, cfg.n_loop) < 1 or cfg.n_embd % cfg.n_head:
        raise ConfigError(f"n_layer, n_head, n_embd, block_size, n_loop must be >= 1 and n_head must divide n_embd, "
                          f"got n_head={cfg.n_head}, n_embd={cfg.n_embd}")
    if not 0.0 <= cfg.dropout < 1.0 or cfg.learning_rate <= 0 or cfg.min_lr < 0 or cfg.warmup_iters < 0:
        raise ConfigError("dropout must be in [0, 1), learning_rate > 0, min_lr and warmup_iters >= 0")
    if cfg.task in downstream.LOADERS and (cfg.phase != "finetune" or cfg.vocab != "full"):
        raise ConfigError(f"task {cfg.task!r} (real text) needs phase='finetune' and vocab='full'")
    if cfg.data_dir and (cfg.phase != "pretrain" or cfg.vocab != "full"):
        raise ConfigError("data_dir (token files of GPT-2 ids) needs phase='pretrain' and vocab='full'")
    if cfg.init_from.startswith("gpt2:") and cfg.vocab != "full":
        raise ConfigError("init_from='gpt2:...' needs vocab='full'")
    if not -1 <= cfg.n_pause_min <= cfg.n_pause:
        raise ConfigError(f"n_pause_min must be -1 (off) or in [0, n_pause], got {cfg.n_pause_min}")
    for key in ("hints", "input_hints"):
        if getattr(cfg, key) and (cfg.phase != "finetune" or getattr(TASKS.get(cfg.task), key, None) is None):
            raise ConfigError(f"{key} needs phase='finetune' and a task that defines them, got {cfg.task!r}")
    if cfg.hints and cfg.placement != "append":
        raise ConfigError("hints need appended pauses (a prepended pause cannot see the prompt)")
    if (cfg.repeat or cfg.cot) and (cfg.phase != "finetune" or cfg.n_pause or cfg.task not in TASKS):
        raise ConfigError("repeat and cot replace the pauses: they need phase='finetune', n_pause=0 and an embedded task")
    if cfg.cot and (cfg.repeat or cfg.hints or TASKS[cfg.task].hints is None):
        raise ConfigError(f"cot emits the task's hints: it needs a task that defines them, got {cfg.task!r}, "
                          "and neither repeat nor hints")
    if cfg.hint_weight <= 0:
        raise ConfigError(f"hint_weight must be > 0, got {cfg.hint_weight}")
    pick_device(cfg.device)  # an unknown device, or one this machine lacks, before anything is written


def load_checkpoint(path, device="cpu"):
    """Rebuild (model, vocab, ckpt) exactly as saved, then move the model to device; refuse a
    checkpoint made with another tokenizer."""
    ckpt = read_checkpoint(path)  # on the CPU: the vocab table is read on the host
    if not isinstance(ckpt, dict) or "model_args" not in ckpt:
        raise CheckpointError(f"{path} is not a nanopause checkpoint")
    if ckpt.get("tokenizer") != TOKENIZER_NAME or ckpt.get("pause_id") != PAUSE_ID:
        raise CheckpointError(f"{path} was made with tokenizer {ckpt.get('tokenizer')!r}, pause id "
                              f"{ckpt.get('pause_id')}; this code uses {TOKENIZER_NAME!r}, pause id {PAUSE_ID}")
    table = ckpt["vocab_table"]
    vocab = Vocab(None if table is None else table.numpy())
    try:
        model = GPT(GPTConfig(**ckpt["model_args"]))
        if model.config.vocab_size != vocab.size:
            raise CheckpointError(f"{path}: model vocab_size {model.config.vocab_size} != vocab size {vocab.size}")
        model.load_state_dict(ckpt["model"])
    except (TypeError, KeyError, RuntimeError) as e:  # a shape or a key that does not match
        raise CheckpointError(f"{path}: its weights do not fit its model ({str(e).splitlines()[0][:200]})") from None
    try:
        return model.to(device), vocab, ckpt
    except RuntimeError as e:  # out of memory on the device, say
        raise CheckpointError(f"{path}: cannot move the model to {device} ({str(e).splitlines()[0][:200]})") from None


def checkpoint(model, optimizer, cfg, step, val_loss, vocab, init_fp, history=(), scaler=None, made=None):
    """What ckpt.pt holds: the plain module's weights (never a compile/DDP wrapper's), the optimizer,
    the shape, the full config, the tokenizer, the weights the run started from, and `made`
    (provenance(): its training code, data files, torch version and thread count). No generator state: data
    order, pause positions and dropout masks are functions of (seed, step, micro-batch)."""
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "model_args": dataclasses.asdict(model.config), "config": dataclasses.asdict(cfg), "step": step,
            "val_loss": val_loss, "tokenizer": TOKENIZER_NAME, "pause_id": PAUSE_ID,
            "vocab_table": None if vocab.table is None else torch.from_numpy(vocab.table),
            "init_fingerprint": init_fp, "val_history": list(history),
            "scaler": scaler.state_dict() if scaler is not None else {}, **(made or {})}


# where a run lies and how it is shown, not what it computes: left out wherever runs are compared
NOT_RUN_SETTINGS = ("out_dir", "progress", "overwrite", "resume")


def provenance(cfg):
    """What made a run besides its settings, saved in its checkpoints: the hashes of the training code
    and of its data files (None: missing), the torch version (its kernels change the bits) and the thread
    count. Taken once when a run starts: a resumed run must find the same (init_model checks)."""
    return {"code": code_hashes(), "data": {p: file_hash(p) if os.path.exists(p) else None for p in data_files(cfg)},
            "torch": str(torch.__version__), "threads": torch.get_num_threads()}  # str: not a TorchVersion object


def settings_changed(saved_config, cfg, skip=()):
    """The settings (sorted names) in which cfg differs from a checkpoint's config, NOT_RUN_SETTINGS
    and `skip` left out."""
    return sorted(k for k, v in dataclasses.asdict(cfg).items()
                  if k not in NOT_RUN_SETTINGS + tuple(skip) and saved_config.get(k) != v)


def made_changed(saved, made):
    """Why a checkpoint was not made by what `made` (provenance()) records, in a few words (None: it
    was): a training file or data file whose bytes differ or that it has no record of, or another torch."""
    code, data = saved.get("code", {}), saved.get("data", {})
    changed = [name for name, h in made["code"].items() if code.get(name) != h]
    changed += [p for p, h in made["data"].items() if data.get(p) != h]
    if changed:
        return f"{', '.join(changed)} changed since it was trained"
    if saved.get("torch") != made["torch"]:
        return f"it was made with torch {saved.get('torch', 'unknown')}, this is {made['torch']}"
    return None


def init_fingerprint(cfg):
    """The fingerprint of the weights a run of cfg starts from (None from scratch)."""
    if cfg.init_from == "scratch":
        return None
    if cfg.init_from.startswith("gpt2:"):
        return fingerprint(GPT.from_pretrained(cfg.init_from[len("gpt2:"):]).state_dict())
    return fingerprint(read_checkpoint(cfg.init_from)["model"])


def init_model(cfg, device, made=None):
    """The model a run starts from, and where from: (model, vocab, resumed checkpoint or None,
    fingerprint of the initial weights or None from scratch). Four ways: resume this run (only with
    the settings, code, data and torch it was made with: `made`, default provenance(cfg)), a checkpoint
    (the next phase), GPT-2's weights, or scratch."""
    path = os.path.join(cfg.out_dir, "ckpt.pt")
    if cfg.resume and os.path.exists(path):
        ckpt = read_checkpoint(path)
        diff = settings_changed(ckpt["config"], cfg)
        why = (f"it was made with other settings ({', '.join(diff)})" if diff else
               made_changed(ckpt, made or provenance(cfg)))
        if why:  # a run trained partly by other code or on other data would be saved as if it were all one
            raise ConfigError(f"--resume: {path} cannot be continued: {why} (--overwrite=True restarts it)")
        model, vocab, _ = load_checkpoint(path, device)
        return model, vocab, ckpt, ckpt.get("init_fingerprint")
    if cfg.init_from == "scratch":
        vocab = Vocab(None) if cfg.vocab == "full" else task_vocab(cfg.task)
        model = GPT(GPTConfig(block_size=cfg.block_size, vocab_size=vocab.size, n_layer=cfg.n_layer,
                              n_head=cfg.n_head, n_embd=cfg.n_embd, dropout=cfg.dropout, bias=cfg.bias,
                              n_loop=cfg.n_loop))
        return model.to(device), vocab, None, None
    if cfg.init_from.startswith("gpt2:"):  # GPT-2's weights (Hugging Face layout) + a pause row
        try:
            model, vocab = GPT.from_pretrained(cfg.init_from[len("gpt2:"):]), Vocab(None)
        except OSError as e:
            raise CheckpointError(f"cannot load GPT-2 weights from {cfg.init_from!r}: {e}") from None
    else:
        model, vocab, _ = load_checkpoint(cfg.init_from)  # fresh optimizer: a new phase
    fp = fingerprint(model.state_dict())  # on the CPU, before the move
    return model.to(device), vocab, None, fp


def get_lr(it, cfg):
    """Linear warm-up (lr > 0 already at step 0), then cosine decay to min_lr at max_iters."""
    if it < cfg.warmup_iters:
        return cfg.learning_rate * (it + 1) / (cfg.warmup_iters + 1)
    if it >= cfg.max_iters:
        return cfg.min_lr
    ratio = (it - cfg.warmup_iters) / max(1, cfg.max_iters - cfg.warmup_iters)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (cfg.learning_rate - cfg.min_lr)


@torch.no_grad()
def estimate_loss(model, batches, device, ctx):
    model.eval()
    losses = []
    for x, y, _ in batches:
        with ctx:
            _, loss = model(to_device(x, device), to_device(y, device))
        losses.append(loss.item())
    model.train()
    return float(np.mean(losses))


def accuracy(model, vocab, pairs, n_inf, progress=False, filler="pause", placement="append", mistakes=0,
             repeat=False, cot_task=""):
    """Exact match of the greedy answer (after n_inf pauses, or '.' with filler="dot"; before the prompt
    with placement="prepend"; after the prompt written twice with repeat; after the model's own steps,
    as many as cot_task's hint rule gives, with cot_task) with the target text; prints the first
    `mistakes` wrong ones."""
    # targets are only compared as text, never encoded: a test answer may use a token the training
    # text never did (it then simply cannot be produced)
    max_new = max(len(get_encoding().encode_ordinary(t)) for _, t in pairs) + 1  # + the end token
    prompts = vocab.encode_batch([p for p, _ in pairs])
    prompts = [repeat_prompt(p) for p in prompts] if repeat else prompts
    kw = dict(progress=progress, placement=placement, ban_ids=vocab.unused_ids)
    if cot_task:
        n_steps = [len(TASKS[cot_task].hints(p)) for p, _ in pairs]
        outs = answer_cot(fast(model), prompts, n_steps, vocab.pause_id, vocab.eot_id, max_new, **kw)
    else:
        outs = answer(fast(model), prompts, n_inf, vocab.pause_id, vocab.eot_id, max_new,
                      filler_id=vocab.dot_id if filler == "dot" else None, **kw)
    right = [vocab.decode(o) == t for o, (_, t) in zip(outs, pairs)]
    for i in [i for i, ok in enumerate(right) if not ok][:mistakes]:
        print(f"  wrong: {pairs[i][0]!r} -> {vocab.decode(outs[i])!r}, expected {pairs[i][1]!r}")
    return float(np.mean(right))


def as_trained(cfg):
    """accuracy()'s settings that answer as a run of cfg was finetuned: its fillers, their placement, the
    prompt repeated, its own chain of thought."""
    return dict(filler=cfg.filler, placement=cfg.placement, repeat=cfg.repeat, cot_task=cfg.task if cfg.cot else "")


@torch.no_grad()
def evaluate(model, val_batches, val_pairs, vocab, cfg, device, ctx):
    """One point of the learning curve: the val loss and, finetuning an embedded task, exact match on the
    validation prompts as the run is finetuned (its pauses, their placement) and with no pauses at all
    (how much of the answer has come to depend on the pause slots)."""
    point = {"val_loss": estimate_loss(model, val_batches, device, ctx)}
    if val_pairs:
        model.eval()
        point["exact_match"] = accuracy(model, vocab, val_pairs, cfg.n_pause, **as_trained(cfg))
        point["exact_match_no_pause"] = (accuracy(model, vocab, val_pairs, 0) if cfg.n_pause else
                                         point["exact_match"])
        model.train()
    return point


def train(cfg):
    """Train one phase; returns {"ckpt": path, "val_loss": float, "step": int, "seconds": float}.
    grad_accum counts micro-batches per optimizer step over all processes, so the same config gives
    the same effective batch (batch_size * grad_accum sequences) on 1 or N processes."""
    check_config(cfg)
    check_out_dir(cfg.out_dir, cfg.resume, cfg.overwrite)  # before the processes meet, so before any write
    check_writable(cfg.out_dir)
    rank, world, device = setup_distributed(cfg)
    master = rank == 0  # only rank 0 logs and writes checkpoints
    device_type = "cuda" if device.startswith("cuda") else device
    ctx, _, scaler = precision(cfg.dtype, device_type)  # autocast, and float16's gradient scaler
    if device_type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # for any fp32 matmul left outside autocast
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank (dropout is seeded per micro-batch)
    train_set, val_set = phase_data(cfg)
    made = provenance(cfg)  # now, as the process starts: the code that runs is the code it started with
    model, vocab, resumed, init_fp = init_model(cfg, device, made)
    # and where it ran, so that a results file can say what trained its runs (common.made_by)
    made.update(commit=commit(), machine={k: None if v is None else str(v) for k, v in machine().items()
                                          if k in ("cpu", "cpu_family", "cpu_model", "gpu")})
    block = model.config.block_size  # a checkpoint's own block_size wins over cfg's
    train_data, val_data = (make_batcher(cfg, d, vocab, block) for d in (train_set, val_set))
    val_rng = np.random.default_rng(0)  # the same val batches at every evaluation and for every seed
    val_batches = [val_data.get(cfg.batch_size, val_rng) for _ in range(cfg.eval_iters)]
    embedded_ft = cfg.phase == "finetune" and cfg.task in TASKS and cfg.curve  # the curve scores answers
    val_pairs = make_examples(cfg.task, cfg.n_val, "val", cfg.data_seed) if embedded_ft else ()
    optimizer = model.configure_optimizers(cfg.weight_decay, cfg.learning_rate, (cfg.beta1, cfg.beta2), device_type)
    start, val_loss, history = 0, float("nan"), []  # history: evaluate()'s point (and step) of every evaluation
    seconds = 0.0  # wall time of the run before this process (a resumed run's earlier part)
    if resumed is not None:
        optimizer.load_state_dict(resumed["optimizer"])
        start, val_loss = resumed["step"], resumed["val_loss"]
        history = list(resumed.get("val_history", []))
        seconds = resumed.get("seconds") or 0.0
        if resumed.get("scaler"):
            scaler.load_state_dict(resumed["scaler"])
    if master and cfg.overwrite and not cfg.resume:  # everything checked: the replaced run's snapshots go
        for name in os.listdir(cfg.out_dir):
            if name.startswith("ckpt_") and name.endswith(".pt"):
                os.remove(os.path.join(cfg.out_dir, name))
    raw_model = model  # checkpoints hold this module's weights, never a compile/DDP wrapper's
    model, ddp = wrap_model(model, cfg.compile, device, world)
    accum = cfg.grad_accum // world  # micro-batches per process
    ckpt_path = os.path.join(cfg.out_dir, "ckpt.pt")
    name = f"{cfg.phase} {os.path.basename(cfg.out_dir)}"
    # a bar on a terminal (tqdm's disable=None turns it off when stderr is not one); in a log file,
    # under nohup or in CI, one plain line per evaluation instead of carriage-return redraws
    bar = tqdm(range(start, cfg.max_iters + 1), desc=name, disable=None if cfg.progress and master else True,
               dynamic_ncols=True, leave=False, initial=start, total=cfg.max_iters + 1)
    plain_log = cfg.progress and master and bar.disable
    # the first step whose loss was not finite, kept on the device: checking it every step would make
    # the CPU wait for the GPU each step, so it is read only when logging and before every save
    bad_step = torch.full((), -1, device=device)
    t_train, n_tokens, t0, loss, lr = 0.0, 0, time.time(), None, None
    mark = (start, 0.0, 0)  # (step, training seconds, tokens) at the last plain log line
    for it in bar:
        last_step = it == cfg.max_iters
        # evaluate and checkpoint: every eval_interval steps and at the last step
        if (it % cfg.eval_interval == 0 or last_step or it == cfg.snapshot_at) and not (resumed is not None and it == start):
            check_finite(bad_step, ckpt_path, world)  # never save weights that saw a non-finite loss
            point = evaluate(raw_model, val_batches, val_pairs, vocab, cfg, device, ctx)
            val_loss = point["val_loss"]
            history.append({"step": it, **point})
            if not math.isfinite(val_loss):
                raise TrainingError(f"step {it}: validation loss is {val_loss}; stopped, {ckpt_path} keeps "
                                    "the last good checkpoint")
            if master:
                save_checkpoint(ckpt_path, checkpoint(raw_model, optimizer, cfg, it, val_loss, vocab, init_fp,
                                                      history, scaler, {**made, "seconds": seconds + time.time() - t0}))
                if it == cfg.snapshot_at:  # e.g. for eval.py's plateau check at 3/4 of the run
                    shutil.copyfile(ckpt_path, os.path.join(cfg.out_dir, f"ckpt_{it}.pt"))
            if plain_log:  # averages since the previous line
                steps, secs = it - mark[0], t_train - mark[1]
                em = f", val exact match {100 * point['exact_match']:.1f}%" if "exact_match" in point else ""
                print(f"{name}: step {it}/{cfg.max_iters}, val loss {val_loss:.4f}{em}" + (
                      f", loss {loss.item():.4f}, lr {lr:.1e}, {1000 * secs / steps:.0f} ms/step, "
                      f"{(n_tokens - mark[2]) / secs:,.0f} tok/s" if steps else ""), flush=True)
                mark = (it, t_train, n_tokens)
        if last_step:
            break
        # set the learning rate of this step
        lr = get_lr(it, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        # forward and backward, accumulating gradients over micro-batches
        t, tokens = time.time(), 0
        for micro in range(accum):
            # each micro-batch has its own generator, keyed by (seed, step, index over all processes):
            # ranks read different data, and N processes see exactly the batches one process would
            rng = np.random.default_rng([cfg.seed, it, rank * accum + micro])
            x, y, w = (None if a is None else to_device(a, device) for a in train_data.get(cfg.batch_size, rng))
            # dropout masks from the same key: ranks draw different masks, N processes draw the masks
            # one process would, and a resumed run needs no generator state
            torch.manual_seed(int(rng.integers(2**63)))
            tokens += x.numel() * world
            # DDP averages gradients over ranks; sync only on the last micro-batch
            with ddp.no_sync() if world > 1 and micro < accum - 1 else nullcontext():
                with ctx:
                    logits, loss = model(x, y)
                    if w is not None:  # hints weighing other than 1: a weighted mean (pause.weighted_loss)
                        loss = weighted_loss(logits, y, w)
                scaler.scale(loss / accum).backward()  # no scaling unless float16
            bad_step = torch.where((bad_step < 0) & ~torch.isfinite(loss.detach()), it, bad_step)
        # clip, step the optimizer
        if cfg.grad_clip > 0:
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            torch.nn.utils.clip_grad_norm_(raw_model.parameters(), cfg.grad_clip)
        scaler.step(optimizer)  # optimizer.step(), unless float16's gradients overflowed
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        # log (.item() waits for the GPU, so only every log_interval steps; every rank checks, together)
        if it % cfg.log_interval == 0:
            check_finite(bad_step, ckpt_path, world)
        if it % cfg.log_interval == 0 and master:
            dt = time.time() - t
            bar.set_postfix(loss=f"{loss.item():.3f}", val=f"{val_loss:.3f}", lr=f"{lr:.1e}",
                            ms=f"{1000 * dt:.0f}", tok_s=f"{tokens / dt:,.0f}")
        t_train += time.time() - t
        n_tokens += tokens
    bar.close()
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return {"ckpt": ckpt_path, "val_loss": val_loss, "step": cfg.max_iters, "val_history": history,
            "seconds": time.time() - t0, "train_seconds": t_train}


def main(argv):
    def body():
        out = train(parse_config(argv, Config))
        print(f"step {out['step']}: val loss {out['val_loss']:.4f}, {out['seconds']:.0f}s -> {out['ckpt']}")
    return run_cli("train.py", body)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
