"""GPT.from_pretrained on a tiny random GPT-2 written by hand in the Hugging Face layout."""
import json
import math

import torch

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


def test_from_pretrained_matches_reference(tmp_path):
    sd = hf_state_dict()
    torch.save(sd, tmp_path / "pytorch_model.bin")
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
    out = train.train(train.parse_config(args))
    model, vocab, ckpt = train.load_checkpoint(out["ckpt"])
    assert vocab.table is None and model.config.gelu_approx == "tanh" and ckpt["config"]["n_pause"] == 4
    assert train.main([f"--init_from=gpt2:{tmp_path}/nowhere", "--vocab=full", f"--out_dir={tmp_path}/x"]) == 2
