"""probe.py: the probes find what is linearly there and nothing when the labels are shuffled; the
attention and read-outs it reports are the model's own."""
import json

import numpy as np
import pytest
import torch

import probe
import train
from common import parse_config
from tiny import TINY, tiny


def test_a_probe_recovers_a_planted_linear_feature_and_not_shuffled_labels():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 16))
    w = rng.normal(size=16)
    labels = np.digitize(x @ w, [-2.0, 0.0, 2.0])  # 4 classes cut along one direction
    tr, va = slice(0, 2000), slice(2000, 3000)
    assert probe.probe_accuracy(x[tr], labels[tr], x[va], labels[va]) > 0.9
    majority = np.max(np.bincount(labels[va])) / 1000
    shuffled = probe.probe_accuracy(x[tr], labels[tr], x[va], labels[va], shuffle_rng=np.random.default_rng(1))
    assert shuffled <= majority + 0.03
    xor = (x[:, 0] > 0) ^ (x[:, 1] > 0)  # not linear in x: a linear probe cannot read it
    assert abs(probe.probe_accuracy(x[tr], xor[tr], x[va], xor[va]) - 0.5) < 0.05


def test_a_label_independent_of_the_input_scores_the_majority_share_on_the_validation_draw():
    """A probe is fitted on the train draw and scored on the validation draw, so a label that has nothing
    to do with the input (a coin, 70% ones) scores about its most common value's share, even with as many
    features as this: fitted where it is scored, it would memorize its way above that."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 64))
    coin = (rng.random(600) < 0.7).astype(int)
    tr, va = slice(0, 300), slice(300, 600)
    majority = np.max(np.bincount(coin[va])) / 300
    # at most that share (overfitting its 300 train points, a probe this wide scores a little below it);
    # fitted on the validation draw itself it scores 0.79 here, against a share of 0.71
    assert majority - 0.1 <= probe.probe_accuracy(x[tr], coin[tr], x[va], coin[va]) <= majority + 0.03


def test_attention_weights_are_the_models_own_and_the_readout_is_its_logits():
    model = tiny(3, n_layer=2, n_head=2)
    idx = torch.randint(0, 11, (5, 9))
    states, attns, logits = probe.trace(model, idx)
    assert states.shape == (3, 5, 9, 16) and attns.shape == (2, 5, 2, 9, 9)
    for layer, block in enumerate(model.transformer.h):
        x = block.ln_1(states[layer])
        v = block.attn.c_attn(x).split(16, dim=2)[2].view(5, 9, 2, 8).transpose(1, 2)
        mixed = (attns[layer] @ v).transpose(1, 2).reshape(5, 9, 16)
        # the weights times the values, through the output projection, are what the layer computes
        torch.testing.assert_close(block.attn.c_proj(mixed), block.attn(x), rtol=1e-5, atol=1e-6)
        assert torch.allclose(attns[layer].sum(-1), torch.ones(5, 2, 9))
        assert (attns[layer].triu(1) == 0).all()  # causal: no weight on a later position
    torch.testing.assert_close(logits[:, -1], model(idx)[0][:, -1])
    torch.testing.assert_close(model.transformer.ln_f(states[-1]), model.hidden(idx))


def test_the_readout_is_kept_batch_by_batch_without_the_logits(monkeypatch):
    """look() keeps what the report reads, batch by batch: the same top token at every position, the same
    answer-position attention and residual streams as one trace of every prompt at once, and never the
    (N, T, V) logits (a GPT-2 vocab's would be about 17 GB at the defaults)."""
    model = tiny(4, n_layer=2, n_head=2)
    idx = torch.randint(0, 11, (7, 9))
    states, attns, logits = probe.trace(model, idx)  # what the report read before: every prompt at once
    chunks, real = [], probe.trace
    monkeypatch.setattr(probe, "trace", lambda m, chunk: chunks.append(chunk.size(0)) or real(m, chunk))
    kept_states, kept_attention, top = probe.look(model, idx, budget=3 * 9 * 13)  # 3 prompts' logits at a time
    assert chunks == [3, 3, 1]
    assert top.shape == (7, 9) and kept_attention.shape == (2, 7, 2, 9) and kept_states.shape == (3, 7, 9, 16)
    assert torch.equal(top, logits.argmax(-1))
    torch.testing.assert_close(kept_attention, attns[:, :, :, -1, :])
    torch.testing.assert_close(kept_states, states)
    chunks.clear()
    probe.look(tiny(5, vocab_size=50304, n_layer=1), idx[:, :4], budget=2**20)  # a full vocab: 5 prompts a batch
    assert chunks == [5, 2]


def test_probe_report_of_a_finetuned_model(tmp_path, capsys):
    pt = parse_config(TINY + ["--task=keyparity", "--block_size=40", "--max_iters=20", f"--out_dir={tmp_path}/pt"],
                      train.Config)
    train.train(pt)
    ft = parse_config(TINY + ["--task=keyparity", "--phase=finetune", "--n_pause=2", "--max_iters=20",
                              f"--init_from={tmp_path}/pt/ckpt.pt", f"--out_dir={tmp_path}/ft"], train.Config)
    train.train(ft)
    assert probe.main([f"--ckpt={tmp_path}/ft/ckpt.pt", "--n_train=600", "--n_val=200", f"--out={tmp_path}/probe"]) == 0
    [r] = json.load(open(tmp_path / "probe.json"))["reports"]
    names = r["positions"]
    assert names == [f"x{i}" for i in range(1, 9)] + ["sep", "k", "=", "p1", "p2"]
    key = np.array(r["probes"]["key"]["accuracy"])
    assert key.shape == (2, 13)  # layers 0 (the embeddings) and 1 (TINY has one block)
    assert key[0, names.index("k")] == 1.0  # the key's own embedding tells it exactly
    assert key[0, names.index("x1")] < 0.25  # the first digit knows nothing of the key (10 values)
    assert np.max(r["probes"]["key"]["shuffled"]) < 0.5
    assert len(r["attention"]) == 1 and len(r["attention"][0]) == 2
    assert np.allclose(np.sum(r["attention"], -1), 1.0)
    md = open(tmp_path / "probe.md").read()
    assert len(r["readout"]["answer"]) == 13 and "| model | quantity |" in md
    on_pauses = 100 * np.mean(np.array(r["attention"][0])[:, -2:].sum(1))  # p1, p2 at the one layer
    assert f"| {r['variant']} | {on_pauses:.0f} |" in md


def test_probe_refuses_what_it_cannot_probe(tmp_path, capsys):
    assert probe.main([f"--ckpt={tmp_path}/none*.pt"]) == 2
    assert "no checkpoint matches" in capsys.readouterr().err
    cfg = parse_config(TINY + ["--task=keyparity", "--block_size=40", "--max_iters=2", f"--out_dir={tmp_path}/pt"],
                       train.Config)
    train.train(cfg)
    assert probe.main([f"--ckpt={tmp_path}/pt/ckpt.pt"]) == 2
    assert "finetuned model of an embedded task" in capsys.readouterr().err
