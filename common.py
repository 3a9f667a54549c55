"""
The plumbing every script shares, kept out of the files that teach: errors a user can cause and how a
script reports them, config files and --key=value flags, the device, atomic checkpoint files, the
provenance stamped on every result (command, commit, machine), and statistics over seeds.
It imports no other file of the project: everything else may import it.
"""
import ast
import dataclasses
import difflib
import hashlib
import json
import multiprocessing
import os
import pickle
import platform
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext

import numpy as np
import torch

REPO = os.path.dirname(os.path.abspath(__file__))

# --- errors: what a user can cause is one line on stderr and an exit code, never a traceback ----------


class ConfigError(ValueError):
    """A bad setting: exit code 2."""


class DataError(ValueError):
    """Bad data or data settings (a missing or truncated file, a task too small for n): exit code 2."""


class CheckpointError(ValueError):
    """A missing, unreadable, unsafe or mismatched checkpoint: exit code 2."""


class TrainingError(RuntimeError):
    """The run cannot go on (a non-finite loss): exit code 1."""


def run_cli(name, body):
    """Run body() for a script; returns the exit code (0, 1 or 2), the error printed as one line."""
    try:
        body()
    except (ConfigError, CheckpointError, DataError) as e:
        print(f"{name}: {e}", file=sys.stderr)
        return 2
    except TrainingError as e:
        print(f"{name}: {e}", file=sys.stderr)
        return 1
    return 0

# --- config: a dataclass's defaults, then config files, then --key=value ------------------------------


def parse_config(argv, cls):
    """Build cls from its defaults, then each config file in argv (`key = literal` lines, read with
    ast and never executed), then each --key=value. An unknown key or a wrong type is a ConfigError."""
    values = {}
    for arg in argv:
        if arg in ("-h", "--help"):
            print("usage: [config files] [--key=value ...]; keys and their defaults:")
            for f in dataclasses.fields(cls):
                print(f"  --{f.name}={f.default!r}")
            sys.exit(0)
        if arg.startswith("--"):
            key, eq, raw = arg[2:].partition("=")
            if not eq:
                raise ConfigError(f"expected --key=value, got {arg!r}")
            try:
                value = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                value = raw
            values[key] = _coerce(cls, key, value, raw)
        else:
            values.update({k: _coerce(cls, k, v) for k, v in _read_config_file(arg).items()})
    return cls(**values)


def _read_config_file(path):
    if not os.path.exists(path):
        raise ConfigError(f"config file not found: {path}")
    out = {}
    for node in ast.parse(open(path).read(), filename=path).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)):
            raise ConfigError(f"{path}:{node.lineno}: only `key = value` lines are allowed")
        try:
            out[node.targets[0].id] = ast.literal_eval(node.value)
        except ValueError:
            raise ConfigError(f"{path}:{node.lineno}: value must be a literal") from None
    return out


def _coerce(cls, key, value, raw=None):
    fields = {f.name: f.type for f in dataclasses.fields(cls)}
    if key not in fields:
        close = difflib.get_close_matches(key, fields, n=1)
        raise ConfigError(f"unknown config key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    t = fields[key]
    if t is str:
        if raw is not None or isinstance(value, str):
            return raw if raw is not None else value
    elif t is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    elif t is bool and raw is not None and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    elif type(value) is t:
        return value
    raise ConfigError(f"config key {key!r} needs a {t.__name__}, got {value!r}")


def pick_device(name):
    """"auto" is cuda, then mps, then cpu; any other name must be a device this machine has."""
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if torch.backends.mps.is_available() else "cpu"
    try:
        kind = torch.device(name).type
    except RuntimeError:
        raise ConfigError(f"device must be auto, cpu, cuda, cuda:N, mps or meta, got {name!r}") from None
    if (kind == "cuda" and not torch.cuda.is_available()) or (kind == "mps" and not torch.backends.mps.is_available()):
        raise ConfigError(f"device {name!r} is not available on this machine (try --device=cpu)")
    return name


def setup_distributed(cfg):
    """(rank, world size, device). Under torchrun (RANK set): one process per GPU with nccl when the run
    uses CUDA, gloo when it uses the CPU (--device=cpu on a GPU machine too); otherwise a single process
    on cfg.device."""
    if "RANK" not in os.environ:
        return 0, 1, pick_device(cfg.device)
    rank, local_rank, world = (int(os.environ[k]) for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))
    if cfg.grad_accum % world:
        raise ConfigError(f"grad_accum {cfg.grad_accum} must be a multiple of the {world} processes")
    cuda = pick_device(cfg.device).startswith("cuda")
    torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    device = f"cuda:{local_rank}" if cuda else "cpu"
    if cuda:
        torch.cuda.set_device(device)
    return rank, world, device


def wrap_model(model, compile_it, device, world):
    """(the module a training step calls, its DDP wrapper or None). DDP first, then torch.compile around
    it (on CUDA): compiling the DDP module lets the compiler split the graph at DDP's gradient buckets
    and overlap the all-reduce with the backward pass."""
    ddp = None
    if world > 1:
        cuda = device.startswith("cuda")
        model = ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if cuda else None)
    if compile_it and device.startswith("cuda"):
        model = torch.compile(model)
    return model, ddp


def check_finite(bad_step, ckpt_path, world=1):
    """Stop, on every process, if any process has seen a non-finite training loss (bad_step: the first
    step whose loss was not finite, or -1, kept on the device until it is read here)."""
    step = int(any_rank(bad_step, world).item())
    if step >= 0:
        raise TrainingError(f"step {step}: training loss is not finite; stopped, {ckpt_path} keeps the "
                            "last good checkpoint")


def any_rank(flag, world):
    """A per-process step number (-1: none) taken as the largest over every process, so that all of
    them stop together when any one must (a process that stopped alone would leave the others waiting
    in the next gradient all-reduce until its timeout)."""
    if world > 1:
        flag = flag.clone()
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
    return flag


def precision(name, device_type):
    """(autocast context, dtype, GradScaler) of a run. "auto": bfloat16 autocast on a GPU that has it,
    float16 with a gradient scaler on one that does not (pre-Ampere), float32 on a CPU (the comparisons
    here are bit-reproducible in float32). float16's narrow range underflows small gradients; the
    scaler multiplies the loss before backward and divides the gradients before the step, skipping
    steps whose gradients overflowed."""
    if name == "auto":
        name = "float32" if device_type != "cuda" else (
            "bfloat16" if torch.cuda.is_bf16_supported() else "float16")
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(name)
    if dtype is None:
        raise ConfigError(f"dtype must be auto, float32, bfloat16 or float16, got {name!r}")
    ctx = nullcontext() if dtype is torch.float32 else torch.autocast(device_type, dtype=dtype)
    scaler = torch.amp.GradScaler(device_type, enabled=dtype is torch.float16)
    return ctx, dtype, scaler


def to_device(array, device):
    """A numpy batch as a tensor on device. To a GPU the copy is made from pinned (page-locked) memory:
    only then does non_blocking=True let it overlap with the GPU's work instead of waiting."""
    t = torch.from_numpy(array)
    if torch.device(device).type == "cuda":
        t = t.pin_memory()
    return t.to(device, non_blocking=True)

def map_jobs(fn, jobs, workers, threads):
    """[fn(*job) for job in jobs], in `workers` spawned processes when workers > 1 (the tiny models here
    are bound by per-op overheads: a second thread barely helps a run, a second process doubles the
    throughput). Every job runs with `threads` torch threads, here or in a worker, so the bits do not
    depend on the number of workers."""
    if workers > 1 and jobs:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=torch.set_num_threads, initargs=(threads,)) as pool:
            return list(pool.map(fn, *zip(*jobs)))
    default = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return [fn(*job) for job in jobs]
    finally:
        torch.set_num_threads(default)

# --- checkpoint files ------------------------------------------------------------------------------------


def save_checkpoint(path, ckpt):
    """Atomic: write a temporary file in the same folder, flush and fsync it, then rename it over
    path. A crash at any moment leaves either the previous checkpoint or the new one, never half."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        torch.save(ckpt, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)  # make the rename itself durable
    finally:
        os.close(fd)


def replace_run(new, old):
    """Move the finished run in folder `new` into folder `old` in place of the run there, ckpt.pt last,
    each file by an atomic rename: old/ckpt.pt is at every moment one whole run, the old or the new (a
    retrain that stops halfway leaves the old run, not an empty or half-written folder)."""
    os.makedirs(old, exist_ok=True)
    names = os.listdir(new)
    for name in sorted(names, key=lambda n: n == "ckpt.pt"):
        os.replace(os.path.join(new, name), os.path.join(old, name))
    for name in os.listdir(old):  # the old run's snapshots, if the new run kept others
        if name.startswith("ckpt_") and name.endswith(".pt") and name not in names:
            os.remove(os.path.join(old, name))
    os.rmdir(new)


def read_checkpoint(path):
    """torch.load with weights_only=True: tensors and plain Python values only, so a checkpoint that
    carries pickled code is refused instead of run. Always onto the CPU, whatever device the run uses:
    a checkpoint also holds tables and values that are read on the host (the vocab table, the config),
    and the model is moved to its device after its weights are loaded."""
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        lines = [line.strip() for line in str(e).splitlines() if "unsupported" in line.lower()]
        lines = lines or ["unpickling failed"]
        if "global" in lines[0].lower():  # it names a function or class to import: code, not data
            raise CheckpointError(f"{path}: refusing to load, it holds more than tensors and plain values "
                                  f"({lines[0][:160]})") from None
        raise CheckpointError(f"{path}: not a readable checkpoint ({lines[0][:160]})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:  # truncated, empty, not a zip of tensors
        why = (str(e).splitlines() or [""])[0][:200] or type(e).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({why})") from None


def fingerprint(state_dict):
    """A short hash of a model's weights (names, dtypes, shapes and values): the identity of the model a
    finetune started from, so that a finetune of an older pretrained model is never reused."""
    h = hashlib.sha256()
    for name, t in sorted(state_dict.items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


# The files whose code decides a run's weights: what train.py imports (the model, the pause rules, the
# data and the tasks, the loop, and the plumbing it calls). A finished run is reused only while these
# are unchanged (eval.ensure_trained), so that editing a rule retrains what it affects. eval.py, the
# study and the instruments are left out: changing how a model is scored must not retrain it.
# tests/test_eval.py checks that this is exactly the set train.py imports.
TRAINING_CODE = ("common.py", "data.py", "decode.py", "downstream.py", "model.py", "pause.py", "tasks.py", "train.py")


def file_hash(path):
    """sha256 of a file's bytes (first 16 hex digits), read in chunks: large token files too."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def code_hashes():
    """{file: hash} of the training code as it is now."""
    return {name: file_hash(os.path.join(REPO, name)) for name in TRAINING_CODE}


def check_out_dir(out_dir, resume, overwrite):
    """Never replace finished work by accident: a checkpoint in out_dir is continued (resume) or replaced
    (overwrite), and otherwise refused before anything is written."""
    path = os.path.join(out_dir, "ckpt.pt")
    if resume and not os.path.exists(path):
        raise ConfigError(f"--resume=True, but there is no {path} to continue")
    if os.path.exists(path) and not (resume or overwrite):
        raise ConfigError(f"{out_dir} holds a checkpoint: --resume=True continues it, --overwrite=True replaces it")


def check_writable(folder):
    """Fail before any work if a folder cannot be written (rather than after an hour of training)."""
    try:
        os.makedirs(folder, exist_ok=True)
        probe = os.path.join(folder, f".write_test{os.getpid()}")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as e:
        raise ConfigError(f"cannot write to out_dir {folder!r}: {e.strerror or e}") from None

# --- provenance: what every result file is stamped with ---------------------------------------------


# settings that change the bits of CPU results (python bench/repro.py), recorded when set
KERNEL_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "OMP_NUM_THREADS")


def machine():
    """What a result was computed on. CPU results depend on the instruction set torch's kernels use
    (AVX-512 or AVX2), so the CPU's family/model, its AVX-512 support, torch's chosen kernel level and
    the thread count are recorded with its name."""
    info = {"cpu": platform.processor(), "cpu_family": None, "cpu_model": None, "avx512": None}
    try:
        with open("/proc/cpuinfo") as f:
            first = f.read().split("\n\n")[0]
        fields = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in first.splitlines() if ":" in line)}
        info.update(cpu=fields.get("model name", info["cpu"]), cpu_family=fields.get("cpu family"),
                    cpu_model=fields.get("model"), avx512="avx512f" in fields.get("flags", "").split())
    except OSError:
        pass
    return {**info, "env": {k: os.environ[k] for k in KERNEL_ENV if k in os.environ},
            "cores": os.cpu_count(), "threads": torch.get_num_threads(),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "gpu": gpu_name(),
            "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform()}


def gpu_name():
    """The first GPU's name, or None: also where torch.cuda.is_available() says yes but no driver answers
    (a stand-in for a GPU in the tests, a broken install), so a stamp never stops a run."""
    try:
        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except (RuntimeError, AssertionError):
        return None


def commit():
    """The code's commit, "+dirty" when tracked files differ from it. Take it when a run starts."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_atomic(path, text):
    """Write a text file whole or not at all: a temporary file beside it, then renamed over it."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_results(stem, result, body, code, t0):
    """Write <stem>.json (result + command, commit, machine, seconds) and <stem>.md (one provenance
    line, then body), each atomically. Returns the full result."""
    result = {"command": " ".join(["python"] + sys.argv), "commit": code, "machine": machine(),
              "seconds": time.time() - t0, **result}
    m = result["machine"]
    env = "".join(f"{k}={v} " for k, v in m["env"].items())
    line = (f"`{env}{result['command']}` at commit {result['commit']} on {m['cpu']} (family {m['cpu_family']} "
            f"model {m['cpu_model']}, {'AVX-512' if m['avx512'] else 'no AVX-512'}, {m['threads']} threads; "
            f"gpu: {m['gpu']}), {result['seconds']:.0f} s")
    os.makedirs(os.path.dirname(stem) or ".", exist_ok=True)
    write_atomic(stem + ".json", json.dumps(result, indent=2))
    write_atomic(stem + ".md", f"{line}\n\n{body}\n")
    return result

def made_by(path, reused, ckpt=None):
    """What trained the run in path, as its checkpoint (ckpt, if already read) recorded it: commit,
    machine, seconds."""
    ckpt = ckpt if ckpt is not None else read_checkpoint(path)
    return {"run": os.path.relpath(os.path.dirname(path)), "reused": reused, "commit": ckpt.get("commit"),
            "cpu": "{cpu} (family {cpu_family} model {cpu_model})".format(**ckpt["machine"]) if ckpt.get("machine") else None,
            "gpu": (ckpt.get("machine") or {}).get("gpu"),
            "seconds": ckpt.get("seconds")}


def trained_by(made):
    """One sentence: the commits and machines that trained the runs, and their training time in all."""
    known = [m for m in made if m["commit"]]
    if not known:
        return "No run records what trained it (older checkpoints)."
    where = sorted({f"{m['cpu']}" + (f" + {m['gpu']}" if m["gpu"] else "") for m in known})
    return (f"The runs were trained at commit(s) {', '.join(sorted({m['commit'] for m in known}))} on "
            f"{'; '.join(where)}, {sum(m['seconds'] or 0 for m in known):.0f} s of training in all"
            + (f" ({len(made) - len(known)} older runs record nothing)" if len(known) < len(made) else "") + ".")



# --- statistics over seeds ------------------------------------------------------------------------------


# two-sided 95% quantiles of Student's t for 1..30 degrees of freedom (no scipy needed)
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042]


def interval95(x):
    """95% confidence interval of the mean of x (t-interval over seeds); a point for one value. Not
    clipped: with few seeds it can reach past 0 or 100% (an accuracy cannot), and the table says so
    rather than hiding how wide it is."""
    x = np.asarray(x, dtype=float)
    if len(x) < 2:
        return float(x.mean()), float(x.mean())
    t = T975[len(x) - 2] if len(x) - 1 <= len(T975) else 1.96
    half = t * x.std(ddof=1) / np.sqrt(len(x))
    return float(x.mean() - half), float(x.mean() + half)


def seed_stats(values, base=None):
    """Mean, std and 95% interval of an accuracy over seeds; with base (the baseline's accuracies on
    the same seeds), the paired difference and its interval too."""
    x = np.asarray(values, dtype=float)
    out = {"accuracy": float(x.mean()), "std": float(x.std(ddof=1)) if len(x) > 1 else None,
           "ci95": interval95(x), "per_seed": x.tolist(), "delta": None, "delta_ci95": None}
    if base is not None:
        d = x - np.asarray(base, dtype=float)
        out.update(delta=float(d.mean()), delta_ci95=interval95(d))
    return out
