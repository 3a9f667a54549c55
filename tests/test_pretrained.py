"""GPT.from_pretrained on a tiny random GPT-2 written by hand in the Hugging Face layout."""
import json
import math

import pytest
import torch

import common
import data
from data import PAUSE_ID
from model import GPT

L, C, H, T, V = 2, 16, 2, 32, 50257


def hf_state_dict(seed=0):
    """Key names and shapes of Hugging Face's GPT2LMHeadModel; Conv1D weights are (in, out)."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape: torch.randn(*shape, generator=g) * 0.1  # noqa: E731
    sd = {"transformer.wte.weight": r(V, C), "transformer.wpe.weight": r(T, C),
          "transformer.ln_f.weight": 1 + r(C), "transformer.ln_f.bias": r(C)}
    for i in range(L):
        p = f"transformer.h.{i}."
        sd.update({p + "ln_1.weight": 1 + r(C), p + "ln_1.bias": r(C), p + "ln_2.weight": 1 + r(C),
                   p + "ln_2.bias": r(C), p + "attn.c_attn.weight": r(C, 3 * C), p + "attn.c_attn.bias": r(3 * C),
                   p + "attn.c_proj.weight": r(C, C), p + "attn.c_proj.bias": r(C),
                   p + "mlp.c_fc.weight": r(C, 4 * C), p + "mlp.c_fc.bias": r(4 * C),
                   p + "mlp.c_proj.weight": r(4 * C, C), p + "mlp.c_proj.bias": r(C),
                   p + "attn.bias": torch.tril(torch.ones(T, T)).view(1, 1, T, T)})  # the mask buffer
    sd["lm_head.weight"] = sd["transformer.wte.weight"]
    return sd


def reference_logits(sd, idx):
    """GPT-2's forward pass written out plainly from the HF weights."""
    def ln(x, w, b):
        return torch.nn.functional.layer_norm(x, (C,), sd[w], sd[b], 1e-5)

    def gelu(x):  # GPT-2's tanh approximation
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    n = idx.size(1)
    x = sd["transformer.wte.weight"][idx] + sd["transformer.wpe.weight"][:n]
    for i in range(L):
        p = f"transformer.h.{i}."
        h = ln(x, p + "ln_1.weight", p + "ln_1.bias") @ sd[p + "attn.c_attn.weight"] + sd[p + "attn.c_attn.bias"]
        q, k, v = (t.view(1, n, H, C // H).transpose(1, 2) for t in h.split(C, dim=2))
        att = (q @ k.transpose(-1, -2)) / math.sqrt(C // H)
        att = att.masked_fill(torch.triu(torch.ones(n, n, dtype=torch.bool), 1), float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(1, n, C)
        x = x + y @ sd[p + "attn.c_proj.weight"] + sd[p + "attn.c_proj.bias"]
        h = gelu(ln(x, p + "ln_2.weight", p + "ln_2.bias") @ sd[p + "mlp.c_fc.weight"] + sd[p + "mlp.c_fc.bias"])
        x = x + h @ sd[p + "mlp.c_proj.weight"] + sd[p + "mlp.c_proj.bias"]
    return ln(x, "transformer.ln_f.weight", "transformer.ln_f.bias") @ sd["transformer.wte.weight"].t()


@pytest.mark.parametrize("layout", ["model.safetensors", "pytorch_model.bin"])
def test_from_pretrained_matches_reference(layout, tmp_path):
    sd = hf_state_dict()
    if layout == "model.safetensors":  # as transformers 5 writes it: no tied duplicate, no pickle
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in sd.items() if k != "lm_head.weight"}, tmp_path / layout)
    else:
        torch.save(sd, tmp_path / layout)
    (tmp_path / "config.json").write_text(json.dumps({"n_layer": L, "n_head": H, "n_embd": C, "n_positions": T,
                                                      "vocab_size": V}))
    model = GPT.from_pretrained(str(tmp_path)).eval()
    assert model.config.vocab_size == 50304 and model.config.gelu_approx == "tanh"
    idx = torch.randint(0, V, (1, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits, _ = model(idx, torch.zeros_like(idx))
    ours = logits.view(1, 12, -1)
    torch.testing.assert_close(ours[..., :V], reference_logits(sd, idx), rtol=1e-4, atol=1e-5)
    # the pause row (and the padding) start as GPT-2's mean token embedding; the head stays tied
    wte = model.transformer.wte.weight
    torch.testing.assert_close(wte[PAUSE_ID], sd["transformer.wte.weight"].mean(0))
    assert model.lm_head.weight.data_ptr() == wte.data_ptr()
    (tmp_path / layout).unlink()
    with pytest.raises(FileNotFoundError, match="neither model.safetensors nor pytorch_model.bin"):
        GPT.from_pretrained(str(tmp_path))


def test_from_pretrained_without_prefix_and_missing_folder(tmp_path):
    sd = {k.removeprefix("transformer."): v for k, v in hf_state_dict(2).items() if k != "lm_head.weight"}
    torch.save(sd, tmp_path / "pytorch_model.bin")  # GPT2Model's files carry no "transformer." prefix
    (tmp_path / "config.json").write_text(json.dumps({"n_layer": L, "n_head": H, "n_embd": C, "n_positions": T}))
    model = GPT.from_pretrained(str(tmp_path))
    assert torch.equal(model.transformer.h[1].mlp.c_fc.weight, sd["h.1.mlp.c_fc.weight"].t())
    try:
        import transformers  # noqa: F401
    except ImportError:
        import pytest
        with pytest.raises(FileNotFoundError, match="not a folder"):
            GPT.from_pretrained(str(tmp_path / "no_such_folder"))


def test_finetune_from_gpt2_weights(tmp_path):
    import train
    torch.save(hf_state_dict(3), tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text(json.dumps({"n_layer": L, "n_head": H, "n_embd": C, "n_positions": T}))
    args = [f"--init_from=gpt2:{tmp_path}", "--vocab=full", "--phase=finetune", "--n_pause=4", "--n_train=100",
            "--n_val=20", "--batch_size=4", "--eval_iters=1", "--max_iters=3", "--progress=False",
            f"--out_dir={tmp_path}/ft"]
    out = train.train(common.parse_config(args, train.Config))
    model, vocab, ckpt = train.load_checkpoint(out["ckpt"])
    assert vocab.table is None and model.config.gelu_approx == "tanh" and ckpt["config"]["n_pause"] == 4
    assert train.main([f"--init_from=gpt2:{tmp_path}/nowhere", "--vocab=full", f"--out_dir={tmp_path}/x"]) == 2


@pytest.mark.parametrize("task", ["gsm8k", "squad"])
def test_gpt2_pause_finetune_and_score_on_a_real_task_format(task, tmp_path, capsys):
    import eval as ev
    import train
    torch.save(hf_state_dict(4), tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text(json.dumps({"n_layer": L, "n_head": H, "n_embd": C, "n_positions": T}))
    if task == "gsm8k":
        rows = [{"question": f"What is {i} plus {i}?", "answer": f"{i}+{i}={2 * i}\n#### {2 * i}"} for i in range(30)]
        data_file = tmp_path / "gsm8k.jsonl"
        data_file.write_text("\n".join(json.dumps(r) for r in rows))
    else:  # contexts far longer than block_size (32): the prefix is cut from the left to fit
        qas = [{"id": str(i), "question": f"Which number is {i}?", "answers": [{"text": str(i), "answer_start": 0}]}
               for i in range(30)]
        data_file = tmp_path / "squad.json"
        data_file.write_text(json.dumps({"data": [{"title": "t", "paragraphs": [
            {"context": "A long context about numbers. " * 40, "qas": qas}]}]}))
    args = [f"--init_from=gpt2:{tmp_path}", "--vocab=full", "--phase=finetune", f"--task={task}",
            f"--train_file={data_file}", f"--test_file={data_file}", "--n_val=5", "--n_pause=3", "--batch_size=4",
            "--eval_iters=1", "--max_iters=3", "--max_answer_tokens=4", "--progress=False", f"--out_dir={tmp_path}/ft"]
    assert train.main(args) == 0
    assert ev.main([f"--ckpt={tmp_path}/ft/ckpt.pt", "--progress=False"]) == 0
    out = capsys.readouterr().out
    assert f"{task}, M_inf=3" in out and "on 30 examples" in out
    with pytest.raises(common.DataError, match="train_file not found"):
        data.phase_data(common.parse_config(args[:3] + [f"--task={task}", "--train_file=/nope"], train.Config))


@pytest.mark.parametrize("config", ["gpt2_pauseft_gsm8k.py", "gpt2_pauseft_squad.py"])
def test_gpu_finetune_configs_run_shrunk_on_cpu(config, tmp_path):
    import os

    import train
    torch.save(hf_state_dict(5), tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text(json.dumps({"n_layer": L, "n_head": H, "n_embd": C, "n_positions": T}))
    cfg_file = os.path.join(os.path.dirname(train.__file__), "configs", config)
    base = common.parse_config([cfg_file], train.Config)
    if base.task == "gsm8k":
        rows = [{"question": f"{i}?", "answer": f"#### {i}"} for i in range(20)]
        (tmp_path / "d").write_text("\n".join(json.dumps(r) for r in rows))
    else:
        (tmp_path / "d").write_text(json.dumps({"data": [{"title": "t", "paragraphs": [{"context": "c " * 50, "qas": [
            {"id": str(i), "question": f"{i}?", "answers": [{"text": str(i), "answer_start": 0}]} for i in range(20)]}]}]}))
    n_pause = base.n_pause
    args = [cfg_file, f"--init_from=gpt2:{tmp_path}", f"--train_file={tmp_path}/d", "--n_val=4", "--batch_size=2",
            "--grad_accum=1", "--max_iters=2", "--eval_iters=1", "--n_pause=8", "--progress=False",
            f"--out_dir={tmp_path}/o"]
    assert n_pause in (10, 50) and train.main(args) == 0  # the paper's M_ft; 8 fits the tiny block of 32


def test_four_variants_on_a_real_task_format(tmp_path):
    """eval.py's comparison with real-text pretraining (token files) and GSM8k-format finetuning."""
    import numpy as np

    import eval as ev
    (tmp_path / "bins").mkdir()
    for split in ("train", "val"):
        np.random.default_rng(0).integers(0, 50257, 3000).astype(np.uint16).tofile(tmp_path / "bins" / f"{split}.bin")
    rows = [{"question": f"What is {i} plus {i}?", "answer": f"#### {2 * i}"} for i in range(24)]
    (tmp_path / "g.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    tiny = "n_layer = 1\nn_head = 1\nn_embd = 8\nblock_size = 32\nbatch_size = 2\nmax_iters = 2\neval_iters = 1\n"
    (tmp_path / "pt.py").write_text(tiny + f"vocab = 'full'\ndata_dir = '{tmp_path}/bins'\n")
    (tmp_path / "ft.py").write_text("vocab = 'full'\ntask = 'gsm8k'\nmax_answer_tokens = 4\nn_val = 4\nbatch_size = 2\n"
                                    f"max_iters = 2\neval_iters = 1\ntrain_file = '{tmp_path}/g.jsonl'\n"
                                    f"test_file = '{tmp_path}/g.jsonl'\n")
    result = ev.compare(ev.EvalConfig(pretrain_config=str(tmp_path / "pt.py"), finetune_config=str(tmp_path / "ft.py"),
                                      variants="paper", workers=1,
                                      out_dir=str(tmp_path / "out"), n_pause=2, seeds=1, progress=False, plot=False))
    assert result["task"] == "gsm8k" and result["n_test"] == 24
    assert {(r["variant"], r["M_inf"]) for r in result["rows"]} >= {("StdPT_StdFT", 0), ("PausePT_PauseFT", 2)}
