"""Tiny full-vocabulary nanopause checkpoints for the export and harness tests (transformers, lm-eval):
train.py's checkpoint format, random weights scaled up so that activations reach the range where exact
and tanh GELU differ (at GPT-2's init scale of 0.02 every activation is near 0 and they agree)."""
import importlib
import os

import pytest
import torch

from common import save_checkpoint
from data import Vocab
from model import GPT, GPTConfig
from train import Config, checkpoint

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing at test time may reach the network
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def optional(name):
    """An optional package of requirements-hf.txt. Without it these tests are skipped on a developer's
    machine, but never in CI (CI=true), which installs it: there a missing package is a failure."""
    if os.environ.get("CI"):
        return importlib.import_module(name)
    return pytest.importorskip(name)


def tiny_full_model(seed=0, gelu_approx="none", scale=8.0, block_size=64):
    torch.manual_seed(seed)
    model = GPT(GPTConfig(block_size=block_size, vocab_size=50304, n_layer=2, n_head=2, n_embd=16,
                          gelu_approx=gelu_approx))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.mul_(scale)
            elif p.dim() == 1:
                p.add_(0.3 * torch.randn_like(p))  # biases and LayerNorm gains that are not 0 and 1
    return model.eval()


def save_full(model, path, **config):
    """model as a train.py checkpoint with the full vocab (what train.load_checkpoint reads)."""
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")
    save_checkpoint(str(path), checkpoint(model, opt, Config(vocab="full", **config), 0, 1.0, Vocab(None), None))
    return str(path)
