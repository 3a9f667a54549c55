"""The alternatives to pauses (eval.py --variants=controls): each rule produces exactly what it claims.
Looped depth (GPTConfig.n_loop), chain of thought (pause.format_cot, answer_cot), the prompt repeated
(pause.repeat_prompt), trained '.' filler, and the FLOPs every table reports (model.forward_flops)."""
import dataclasses

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import data
import eval as ev
import tasks
from decode import Decoder
from model import GPT, GPTConfig, KVCache, forward_flops
from pause import answer_cot, format_cot, repeat_prompt
from tiny import EOT, PAUSE, Scripted, all_logits, tiny
from train import Config, accuracy, as_trained


def by_hand(model, idx, loops):
    """The blocks run `loops` times over their own output, written out without GPT.hidden."""
    t = model.transformer
    x = t.wte(idx) + t.wpe(torch.arange(idx.size(1)))
    for _ in range(loops):
        for block in t.h:
            x = block(x)
    return model.lm_head(t.ln_f(x))


@pytest.mark.parametrize("loops", [1, 2, 3])
def test_looped_model_runs_its_blocks_n_loop_times_with_shared_weights(loops):
    model = tiny(n_loop=loops)
    plain = tiny()  # the same seed: the same weights, GPT-2's single pass
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), plain.parameters()))
    idx = torch.randint(0, 11, (3, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(all_logits(model, idx), by_hand(plain, idx, loops))
        if loops == 1:  # one loop is the plain GPT, bit for bit
            assert torch.equal(all_logits(model, idx), all_logits(plain, idx))
        else:
            assert not torch.allclose(all_logits(model, idx), all_logits(plain, idx))


def test_looped_model_kv_cache_gives_the_full_forward_and_the_same_greedy_tokens():
    """The cache keeps one entry per loop and layer: position by position through it equals one pass."""
    model = tiny(seed=1, n_loop=2)
    idx = torch.randint(0, 11, (2, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = all_logits(model, idx)
        cache = KVCache(model, 2)
        assert cache.shape[0] == 2 * model.config.n_layer
        model(idx[:, :5], cache=cache)
        steps = [model(idx[:, t:t + 1], cache=cache)[0][:, 0] for t in range(5, 12)]
    assert torch.allclose(torch.stack(steps, 1), full[:, 5:], atol=1e-5)
    cached = model.generate(idx[:, :6], 8, use_cache=True)
    assert torch.equal(cached, model.generate(idx[:, :6], 8, use_cache=False))
    assert torch.equal(Decoder(model, int8=False).generate(idx[:, :6], 8), cached)


def test_fast_decoder_of_a_large_looped_model_runs_every_loop():
    """decode.py lays out a large model's blocks for one-row steps; a looped one must loop there too."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(block_size=16, vocab_size=2**16, n_layer=1, n_head=2, n_embd=16, n_loop=2)).eval()
    idx = torch.randint(0, 2**16, (2, 5), generator=torch.Generator().manual_seed(0))
    assert torch.equal(Decoder(model, int8=False).generate(idx, 6), model.generate(idx, 6, use_cache=False))


def test_forward_flops_counts_what_the_model_multiplies():
    """forward_flops = the matrix products torch's FLOP counter sees in a forward (with loops, the head at
    every position) + the causal attention's 4 C per (query, key) pair, counted here by hand."""
    c = GPTConfig(block_size=32, vocab_size=40, n_layer=2, n_head=2, n_embd=16, n_loop=2)
    model, T = GPT(c).eval(), 10
    idx = torch.randint(0, 40, (1, T))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(idx, idx)
    pairs = sum(t + 1 for t in range(T))  # query t sees keys 0..t
    attention = c.n_layer * c.n_loop * 4 * c.n_embd * pairs
    assert forward_flops(c, T, T) == counter.get_total_flops() + attention
    # generation through the KV cache: a prefill of 6, then 3 one-position steps, the head once per step
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.generate(idx[:, :6], 4)
    assert forward_flops(c, 9, 4) == counter.get_total_flops() + c.n_layer * c.n_loop * 4 * c.n_embd * sum(range(1, 10))


def test_chain_of_thought_format_feeds_each_step_back_and_answers_after_the_last():
    prefix, steps, target = np.array([3, 4, 5]), np.array([7, 8]), np.array([9])
    x, y = format_cot(prefix, steps, target, EOT)
    assert x.tolist() == [3, 4, 5, 7, 8, 9] and x.dtype == np.int64
    assert y.tolist() == [-1, -1, 7, 8, 9, EOT]  # each step is the target before it is the next input


def test_chain_of_thought_answer_is_read_after_the_emitted_steps():
    """A scripted model writes its steps (10, then 9) and then the answer (3, 4): the answer is what comes
    after as many tokens as the prompt has steps, the end token excluded; it ends early, nothing."""
    script = {(1, 2): [10, 9, 3, 4, EOT], (2, 1): [10, EOT]}
    model = Scripted(lambda ctx: next(((s + [EOT] * 9)[len(ctx) - 2] for p, s in script.items() if tuple(ctx[:2]) == p), 0))
    assert answer_cot(model, [[1, 2], [2, 1]], [2, 2], PAUSE, EOT, max_new_tokens=3) == [[3, 4], []]
    assert answer_cot(model, [[1, 2]], [1], PAUSE, EOT, max_new_tokens=4) == [[9, 3, 4]]


def test_hops_hints_name_each_variable_on_the_way_to_the_digit():
    prefix = "g = d , d = e , c = 1 , b = a , f = 8 , a = f , e = c , h = b ; h ="
    assert tasks.hops_hints(prefix) == [" b", " a", " f"]  # h = b, b = a, a = f, f = 8
    for name in ("hops", "hops3"):
        for p, t in tasks.make_examples(name, 50, "train", 0):
            hints = tasks.hops_hints(p)
            assert len(hints) == (3 if name == "hops" else 2)
            assert f"{hints[-1].strip()} ={t}" in p  # the last variable holds the answer


def finetune_cfg(**kw):
    return Config(phase="finetune", task="keyparity", n_train=30, n_val=5, **kw)


def batch_rows(cfg):
    vocab = data.task_vocab(cfg.task)
    train, _ = data.phase_data(cfg)
    b = data.make_batcher(cfg, train, vocab, 64)
    return vocab, train, b


def test_repeated_prompt_and_trained_filler_batches_hold_the_sequences_they_claim():
    vocab, train, rep = batch_rows(finetune_cfg(repeat=True))
    _, _, dots = batch_rows(finetune_cfg(n_pause=4, filler="dot"))
    for i, (p, t) in enumerate(train[:10]):
        pi, ti = vocab.encode(p).tolist(), vocab.encode(t).tolist()
        seq = pi + pi + ti + [vocab.eot_id]
        assert rep.X[i, :len(seq) - 1].tolist() == seq[:-1]
        assert rep.Y[i, :len(seq) - 1].tolist() == [-1] * (2 * len(pi) - 1) + ti + [vocab.eot_id]
        seq = pi + [vocab.dot_id] * 4 + ti + [vocab.eot_id]
        assert dots.X[i, :len(seq) - 1].tolist() == seq[:-1] and vocab.pause_id not in dots.X[i].tolist()
        assert repeat_prompt(np.array(pi)).tolist() == pi + pi


def test_chain_of_thought_batches_emit_the_tasks_hints():
    vocab, train, cot = batch_rows(finetune_cfg(cot=True))
    for i, (p, t) in enumerate(train[:10]):
        pi, hi = vocab.encode(p).tolist(), data.hint_ids(tasks.TASKS["keyparity"].hints(p), vocab).tolist()
        seq = pi + hi + vocab.encode(t).tolist() + [vocab.eot_id]
        assert cot.X[i, :len(seq) - 1].tolist() == seq[:-1]
        assert cot.Y[i, len(pi) - 1:len(seq) - 1].tolist() == seq[len(pi):]


def test_each_control_answers_as_it_was_finetuned():
    """accuracy(**as_trained(cfg)) asks a scripted model exactly the sequence each control trains on."""
    vocab = data.task_vocab("keyparity")
    pairs = tasks.make_examples("keyparity", 4, "test", 0)
    asked = []

    def rule(ctx):  # never ends: every answer runs to its longest
        asked.append(tuple(ctx))
        return int(vocab.encode(" 1")[0])

    model = Scripted(rule, vocab.size)
    for cfg, extra in ((finetune_cfg(repeat=True), lambda p: p), (finetune_cfg(n_pause=3, filler="dot"), lambda p: []),
                       (finetune_cfg(cot=True), lambda p: [])):
        asked.clear()
        accuracy(model, vocab, pairs, cfg.n_pause, **as_trained(cfg))
        fill = [vocab.dot_id] * cfg.n_pause
        want = {tuple(vocab.encode(p).tolist() + extra(vocab.encode(p).tolist()) + fill) for p, _ in pairs}
        assert {a for a in asked if len(a) == min(map(len, asked))} == want
    # chain of thought: room for the 9 steps of keyparity (n + 1) and the answer
    assert max(map(len, asked)) - min(map(len, asked)) == 9 + 1


def test_controls_comparison_trains_each_alternative_as_its_variant_says(tmp_path):
    """A tiny --variants of the alternatives: each run's saved settings and shape, and the costs in the
    table: positions, sequential passes, and FLOPs from model.forward_flops over the baseline's."""
    (tmp_path / "pt.py").write_text("task = 'keyparity'\nn_layer = 1\nn_head = 2\nn_embd = 16\nblock_size = 40\n"
                                    "batch_size = 8\nmax_iters = 4\nn_pretrain = 200\nn_val = 20\nn_test = 30\neval_iters = 1\n")
    (tmp_path / "ft.py").write_text("task = 'keyparity'\nn_train = 100\nn_val = 20\nn_test = 30\nbatch_size = 8\n"
                                    "max_iters = 4\neval_iters = 1\neval_interval = 2\n")
    names = "StdPT_StdFT,StdPT_CoTFT,StdPT_RepeatFT,StdPT_DotFT,Loop2_StdFT,Deep5_StdFT"
    out = ev.compare(ev.EvalConfig(pretrain_config=str(tmp_path / "pt.py"), finetune_config=str(tmp_path / "ft.py"),
                                   out_dir=str(tmp_path / "out"), n_pause=3, seeds=1, progress=False, plot=False,
                                   workers=1, variants=names, sweep=False))
    saved = {p.parent.name.split("-")[0]: torch.load(p, weights_only=True)
             for p in (tmp_path / "out/seed1337").glob("*/ckpt.pt")}
    assert saved["ft_StdPT_CoTFT_M0"]["config"]["cot"] and saved["ft_StdPT_RepeatFT_M0"]["config"]["repeat"]
    assert saved["ft_StdPT_DotFT_M3"]["config"]["filler"] == "dot"
    assert saved["ft_Loop2_StdFT_M0"]["model_args"]["n_loop"] == 2 and saved["pt_std_n_loop2"]["model_args"]["n_loop"] == 2
    assert saved["ft_Deep5_StdFT_M0"]["model_args"]["n_layer"] == 5
    rows = {r["variant"]: r for r in out["rows"] if r["M_inf"] == r["M_ft"]}
    prompt = 11  # keyparity: 8 digits, |, k, = ; the answer and the end token: 2 more
    assert rows["StdPT_CoTFT"]["positions"] == prompt + 9 + 2 and rows["StdPT_CoTFT"]["sequential"] == 10
    assert rows["StdPT_RepeatFT"]["positions"] == 2 * prompt + 2 and rows["StdPT_DotFT"]["positions"] == prompt + 3 + 2
    vocab = data.task_vocab("keyparity").size
    shape = GPTConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=vocab)
    base = forward_flops(shape, prompt + 1, 2)
    assert rows["StdPT_CoTFT"]["flops_ratio"] == pytest.approx(forward_flops(shape, prompt + 10, 11) / base)
    assert rows["Loop2_StdFT"]["flops_ratio"] == pytest.approx(
        forward_flops(dataclasses.replace(shape, n_loop=2), prompt + 1, 2) / base)
    assert rows["Deep5_StdFT"]["flops_ratio"] == pytest.approx(
        forward_flops(dataclasses.replace(shape, n_layer=5), prompt + 1, 2) / base)
    assert rows["StdPT_RepeatFT"]["train_ratio"] == pytest.approx(
        forward_flops(shape, 2 * prompt + 1, 2 * prompt + 1) / forward_flops(shape, prompt + 1, prompt + 1))
    # the references: the test set's most common answer, and the pretrained model before finetuning
    refs = {r["variant"]: r for r in out["rows"] if r.get("reference")}
    answers = [t for _, t in tasks.make_examples("keyparity", 30, "test", 0)]
    assert refs["majority answer"]["accuracy"] == max(answers.count(a) for a in set(answers)) / 30
    assert 0 <= refs["StdPT, not finetuned"]["accuracy"] <= 1 and len(refs["StdPT, not finetuned"]["per_seed"]) == 1
    assert out["trained"] and all(m["commit"] and m["seconds"] > 0 for m in out["trained"])
