"""export.py: a nanopause checkpoint as a Hugging Face folder. transformers, offline, must compute the same
logits and the same greedy answer as nanopause on a sequence with pauses; its tokenizer must encode as
data.py does; GPT.from_pretrained must read the same weights back; what GPT-2 cannot hold is refused."""
import json

import pytest
import torch

import export
from data import EOT_ID, PAUSE_ID, Vocab
from hf_tiny import optional, save_full, tiny_full_model
from model import GPT, GPTConfig
from pause import answer

transformers = optional("transformers")


def all_logits(model, idx):
    logits, _ = model(idx, torch.zeros_like(idx))  # with targets the head runs at every position
    return logits


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One export per activation: (nanopause model, its folder)."""
    out = {}
    for approx in ("none", "tanh"):
        folder = tmp_path_factory.mktemp(f"hf_{approx}")
        model = tiny_full_model(seed=1, gelu_approx=approx)
        assert export.main([f"--ckpt={save_full(model, folder / 'ckpt.pt')}", f"--out={folder / 'hf'}"]) == 0
        out[approx] = model, str(folder / "hf")
    return out


@pytest.mark.parametrize("approx", ["none", "tanh"])
def test_transformers_logits_equal_nanopause_on_a_sequence_with_pauses(exported, approx):
    model, folder = exported[approx]
    hf = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    assert hf.config.activation_function == {"none": "gelu", "tanh": "gelu_new"}[approx]
    assert hf.config.vocab_size == 50304  # the padded rows are kept: the weights are the trained ones
    vocab = Vocab(None)
    ids = torch.tensor([list(vocab.encode("The cat sat on the mat, and")) + [PAUSE_ID] * 3 + list(vocab.encode(" so"))])
    with torch.no_grad():
        ours, theirs = all_logits(model, ids), hf(ids).logits
    assert theirs.shape == ours.shape == (1, ids.size(1), 50304)
    assert (ours - theirs).abs().max().item() < 1e-4


def test_greedy_generation_equals_pause_answer_and_never_emits_a_padding_row(tmp_path):
    """transformers' generate() with the exported generation_config must answer what pause.answer answers:
    the same tokens after the same pauses, with the pause and the padding rows never produced. The model
    is made to prefer padding row 50300 at the first answer position, so a missing ban shows."""
    vocab = Vocab(None)
    model = tiny_full_model(seed=2)
    prompt = list(vocab.encode("Question: what is two plus two?\nAnswer:"))
    ids = torch.tensor([prompt + [PAUSE_ID] * 4])
    with torch.no_grad():
        first = all_logits(model, ids)[0, -1, :PAUSE_ID].argmax()
        model.transformer.wte.weight[50300] = 1.5 * model.transformer.wte.weight[first]  # not an input row
        assert model.generate(ids, 1)[0, -1].item() == 50300  # unbanned, the padding row would win
    ckpt = save_full(model, tmp_path / "ckpt.pt")
    assert export.main([f"--ckpt={ckpt}", f"--out={tmp_path / 'hf'}"]) == 0
    ours = answer(model, [prompt], 4, PAUSE_ID, EOT_ID, max_new_tokens=8, ban_ids=vocab.unused_ids)[0]
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    assert hf.generation_config.suppress_tokens == list(range(PAUSE_ID, 50304))
    theirs = hf.generate(ids, max_new_tokens=8, do_sample=False)[0, ids.size(1):].tolist()
    theirs = theirs[:theirs.index(EOT_ID)] if EOT_ID in theirs else theirs
    assert ours == theirs and ours[0] == first.item()


def test_tokenizer_encodes_as_data_py_and_knows_the_pause(exported):
    tok = transformers.AutoTokenizer.from_pretrained(exported["none"][1])
    vocab = Vocab(None)
    assert len(tok) == PAUSE_ID + 1 and tok.convert_tokens_to_ids("<|pause|>") == PAUSE_ID
    assert tok.eos_token_id == EOT_ID
    texts = ["Hello world", "  two  spaces\n\n\ttabs \n", "héllo 日本語 🙂 naïve", "it's 1,234.56 don't I'll",
             "a <|pause|> in text stays text, <|endoftext|> too", "<|pause|><|pause|>", "", " "]
    for text in texts:
        assert tok(text)["input_ids"] == vocab.encode(text).tolist(), text
        assert tok.decode(vocab.encode(text).tolist()) == text
    assert tok.decode([PAUSE_ID]) == "<|pause|>"


def test_round_trip_through_from_pretrained_keeps_every_weight(exported):
    for approx, (model, folder) in exported.items():
        back = GPT.from_pretrained(folder, vocab_size=50304)
        assert back.config == model.config, approx  # the activation too: "gelu" reads back as exact GELU
        ours, theirs = model.state_dict(), back.state_dict()
        assert ours.keys() == theirs.keys()
        for k in ours:
            assert torch.equal(ours[k], theirs[k]), k  # the pause row and the padding rows included


def test_refusals_are_one_line_and_exit_2(tmp_path, capsys):
    compact = GPT(GPTConfig(block_size=16, vocab_size=12, n_layer=1, n_head=1, n_embd=8))
    opt = compact.configure_optimizers(0.1, 1e-3, (0.9, 0.95), "cpu")
    from common import save_checkpoint
    from train import Config, checkpoint
    save_checkpoint(str(tmp_path / "compact.pt"), checkpoint(compact, opt, Config(), 0, 1.0,
                                                            Vocab.compact(range(9)), None))
    nobias = GPT(GPTConfig(block_size=16, vocab_size=50304, n_layer=1, n_head=1, n_embd=8, bias=False))
    save_full(nobias, tmp_path / "nobias.pt", bias=False)
    good = save_full(tiny_full_model(seed=4), tmp_path / "good.pt")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "config.json").write_text("{}")
    cases = [([f"--ckpt={tmp_path / 'none.pt'}", f"--out={tmp_path}/a"], "checkpoint not found"),
             ([f"--ckpt={tmp_path / 'compact.pt'}", f"--out={tmp_path}/b"], "compact vocab"),
             ([f"--ckpt={tmp_path / 'nobias.pt'}", f"--out={tmp_path}/c"], "bias=False"),
             ([f"--ckpt={good}", f"--out={tmp_path}/taken"], "already holds an export"),
             ([f"--ckpt={good}"], "--out"),
             ([f"--ckpt={good}", f"--out={tmp_path}/d", "--vocab=full"], "unknown config key")]
    for args, message in cases:
        capsys.readouterr()
        assert export.main(args) == 2, args
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, (args, err)
    assert json.loads((tmp_path / "taken" / "config.json").read_text()) == {}  # nothing overwritten
