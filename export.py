"""
Export a full-vocabulary nanopause checkpoint as a Hugging Face folder that transformers loads offline:
GPT-2's architecture (config.json, GPT2LMHeadModel), safetensors weights, and a tokenizer whose
<|pause|> is id 50257 and which encodes text exactly as data.py does. GPT.from_pretrained reads it back.

  python export.py --ckpt=out/x/ckpt.pt --out=hf/x
  python -c "from transformers import AutoModelForCausalLM as M; M.from_pretrained('hf/x')"

A tiny one on a CPU, in seconds:

  python train.py --vocab=full --n_layer=1 --n_head=2 --n_embd=16 --block_size=32 --batch_size=4 --eval_iters=2 \
      --max_iters=20 --out_dir=out/tiny_full
  python export.py --ckpt=out/tiny_full/ckpt.pt --out=hf/tiny_full

What the folder holds, and the choices behind it:
- vocab_size 50304, every row the checkpoint has: the weights are the trained ones bit for bit (the
  round trip through GPT.from_pretrained returns them exactly) and the head keeps the padded width it
  was trained at. The tokenizer knows 50258 tokens, so rows 50258..50303 are never an input;
  generation_config.json suppresses them and the pause in transformers' generate(), as pause.answer
  bans them, so nothing decodes to a row that is no token.
- activation_function "gelu" (exact, nanopause's default) or "gelu_new" (GPT-2's tanh GELU, what
  gelu_approx="tanh" computes). A model without biases (bias=False) has no GPT-2 config: refused.
- A compact-vocabulary checkpoint (the embedded tasks) is refused: its ids are not GPT-2's, and a
  tokenizer for it would be a second tokenizer to keep equal to data.py's.
- The tokenizer is built from data.py's hash-checked BPE files (nothing downloaded), with
  split_special_tokens=True: the text "<|pause|>" stays text, as Vocab.encode keeps it; only code
  puts id 50257 in a sequence.

transformers is optional (requirements-hf.txt); nothing on the core path imports this file.
"""
import json
import os
import sys
from dataclasses import dataclass

from common import CheckpointError, ConfigError, parse_config, run_cli
from data import EOT_ID, PADDED_VOCAB, PAUSE_ID, _bpe_files, _check_sha256, ENCODER_JSON_SHA256, VOCAB_BPE_SHA256
from train import load_checkpoint


@dataclass
class ExportConfig:
    ckpt: str = ""           # a nanopause checkpoint (train.py's ckpt.pt) with the full vocab
    out: str = ""            # the folder to write
    overwrite: bool = False  # replace the files of a folder that already holds an export

# HF's Conv1D layers store their weight as (in, out); nn.Linear as (out, in): these four are transposed
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
ACTIVATION = {"none": "gelu", "tanh": "gelu_new"}  # nanopause's gelu_approx -> GPT-2 config's name


def check_exportable(path, model, vocab):
    """Refuse, in one line, what GPT2LMHeadModel cannot hold or this tokenizer cannot read."""
    c = model.config
    if vocab.table is not None:
        raise CheckpointError(f"{path} has a compact vocab ({len(vocab.table)} ids, an embedded task's); "
                              "only a full-vocab checkpoint (--vocab=full) exports to GPT-2's tokenizer")
    if not c.bias:
        raise CheckpointError(f"{path} was trained with bias=False; GPT-2's config has no setting for a "
                              "model without biases")
    if c.gelu_approx not in ACTIVATION:
        raise CheckpointError(f"{path}: gelu_approx={c.gelu_approx!r} has no GPT-2 activation_function")


def gpt2_config(c):
    """The GPT2Config fields of a nanopause GPTConfig (the inverse of what GPT.from_pretrained reads)."""
    return dict(vocab_size=c.vocab_size, n_positions=c.block_size, n_embd=c.n_embd, n_layer=c.n_layer,
                n_head=c.n_head, n_inner=None, activation_function=ACTIVATION[c.gelu_approx],
                resid_pdrop=c.dropout, embd_pdrop=c.dropout, attn_pdrop=c.dropout, layer_norm_epsilon=1e-5,
                bos_token_id=EOT_ID, eos_token_id=EOT_ID, tie_word_embeddings=True)


def gpt2_state_dict(model):
    """nanopause's weights under GPT2LMHeadModel's names; the head is tied to wte, so not repeated."""
    out = {}
    for name, value in model.state_dict().items():
        if name == "lm_head.weight":
            continue
        out[name] = value.t().contiguous() if name.endswith(CONV1D) else value.clone()
    return out


def write_tokenizer(folder, model_max_length):
    """GPT-2's BPE from data.py's own files (their sha256 checked again here) plus <|pause|> = 50257."""
    from tokenizers import AddedToken
    from transformers import GPT2Tokenizer
    vocab_bpe, encoder_json = _bpe_files()
    _check_sha256(vocab_bpe, VOCAB_BPE_SHA256)
    _check_sha256(encoder_json, ENCODER_JSON_SHA256)
    with open(encoder_json, encoding="utf-8") as f:
        vocab = json.load(f)
    with open(vocab_bpe, encoding="utf-8") as f:
        merges = [tuple(line.split()) for line in f.read().split("\n")[1:] if line.strip()]  # line 1: #version
    tok = GPT2Tokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length, split_special_tokens=True)
    tok.add_special_tokens({"additional_special_tokens": [AddedToken("<|pause|>", special=True, normalized=False)]})
    if tok.convert_tokens_to_ids("<|pause|>") != PAUSE_ID or len(tok) != PAUSE_ID + 1:
        raise RuntimeError(f"the exported tokenizer put <|pause|> at {tok.convert_tokens_to_ids('<|pause|>')}")
    tok.save_pretrained(folder)


def export(ckpt, out, overwrite=False):
    """Write ckpt (a nanopause checkpoint) to the folder out; returns out."""
    if not ckpt or not out:
        raise ConfigError("both --ckpt=<nanopause ckpt.pt> and --out=<folder> are needed")
    if os.path.exists(os.path.join(out, "config.json")) and not overwrite:
        raise ConfigError(f"{out} already holds an export; --overwrite=True replaces it")
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f"{out} is a file, not a folder")
    model, vocab, _ = load_checkpoint(ckpt)
    check_exportable(ckpt, model, vocab)
    try:
        from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel
    except ImportError:
        raise ConfigError("export needs the optional packages: pip install -r requirements-hf.txt") from None
    hf = GPT2LMHeadModel(GPT2Config(**gpt2_config(model.config))).eval()
    # strict: every weight of GPT2LMHeadModel is filled from the checkpoint, none left at its random init
    missing, unexpected = hf.load_state_dict(gpt2_state_dict(model), strict=False)
    if unexpected or set(missing) - {"lm_head.weight"}:
        raise CheckpointError(f"{ckpt}: weights do not map onto GPT-2's (missing {missing[:3]}, unexpected {unexpected[:3]})")
    hf.tie_weights()
    # generate() in transformers then never emits a pause or a padding row, as pause.answer never does
    hf.generation_config = GenerationConfig(bos_token_id=EOT_ID, eos_token_id=EOT_ID, pad_token_id=EOT_ID,
                                            suppress_tokens=list(range(PAUSE_ID, PADDED_VOCAB)))
    os.makedirs(out, exist_ok=True)
    hf.save_pretrained(out)  # config.json, model.safetensors, generation_config.json
    write_tokenizer(out, model.config.block_size)
    return out


def main(argv=None):
    def body():
        cfg = parse_config(sys.argv[1:] if argv is None else argv, ExportConfig)
        print(f"wrote {export(cfg.ckpt, cfg.out, cfg.overwrite)}")
    return run_cli("export.py", body)


if __name__ == "__main__":
    sys.exit(main())
