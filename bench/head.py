"""
A finetuning step with the head at every position (GPT.forward) against the head at the supervised
positions only (x[y != -1]): what the one-graph training step costs on a CPU.

  python bench/head.py
"""
import json
import os
import statistics
import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo's own files
import data  # noqa: E402
from bench.shared import cli, stamp, timed  # noqa: E402
from decode import num_threads  # noqa: E402
from model import GPT, GPTConfig  # noqa: E402
from train import Config  # noqa: E402


@dataclass
class HeadConfig:
    rounds: int = 7   # paired, alternating rounds
    steps: int = 20   # timed steps per round (after one warm-up)


def head_cost(cfg):
    """A finetuning step (forward, backward, AdamW) of the default comparison's model (3 layers, 64 wide,
    keyparity, M_ft = 10, batch 64, one thread as its jobs run), in its compact vocab and at GPT-2's full
    vocab, with the loss computed as GPT.forward does (the head at every position, -1 targets ignored)
    and with the head run only at the supervised positions (x[y != -1], which needs the number of such
    positions on the host). Paired, alternating rounds; the median ms per step."""
    out = stamp("head")
    print(f"`{out['command']}` at commit {out['commit']} on {out['machine']['cpu']}, one thread", flush=True)

    def gathered(model, x, y):  # the head at the supervised positions only
        keep = y != -1
        return F.cross_entropy(model.lm_head(model.hidden(x)[keep]).float(), y[keep])
    losses = {"every position": lambda model, x, y: model(x, y)[1], "supervised only": gathered}
    for vocab_name in ("compact", "full"):
        fcfg = Config(phase="finetune", task="keyparity", n_pause=10, n_train=2000, vocab=vocab_name)
        vocab = data.Vocab(None) if vocab_name == "full" else data.task_vocab("keyparity")
        train_set, _ = data.phase_data(fcfg)
        x, y, _ = data.make_batcher(fcfg, train_set, vocab, 40).get(64, np.random.default_rng(0))
        x, y = torch.from_numpy(x), torch.from_numpy(y)
        torch.manual_seed(0)
        model = GPT(GPTConfig(block_size=40, vocab_size=vocab.size, n_layer=3, n_head=4, n_embd=64))
        opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")

        def step(loss_fn):
            loss_fn(model, x, y).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        times = {k: [] for k in losses}
        with num_threads(1):
            for _ in range(cfg.rounds):
                for key, fn in losses.items():
                    times[key].append(timed(lambda: step(fn), "cpu", cfg.steps) * 1e3)
        for key, t in times.items():
            out[f"{vocab_name}_ms_{key.split()[0]}"] = statistics.median(t)
        print(f"{vocab_name} vocab ({vocab.size}), batch {tuple(x.shape)}, {int((y != -1).sum())} supervised "
              f"positions: {out[f'{vocab_name}_ms_every']:.2f} ms/step with the head at every position, "
              f"{out[f'{vocab_name}_ms_supervised']:.2f} ms at the supervised ones only", flush=True)
    print(json.dumps(out))
    return out


def main(argv):
    return cli("bench/head.py", HeadConfig, head_cost, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
