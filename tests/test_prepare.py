"""prepare.py: local text and a named corpus (over a loopback HTTP server) to token files."""
import dataclasses

import numpy as np
import pytest

import prepare
import train
from common import DataError, parse_config
from data import EOT_ID, PAUSE_ID, get_encoding


def test_prepare_local_text_round_trip_and_train(tmp_path):
    docs = {"b.txt": "second file, with <|pause|> as plain text\n", "a.txt": "Hello world. " * 200,
            "sub/c.txt": "naïve café 猫\n" * 50, "skip.md": "not a .txt file"}
    for name, text in docs.items():
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "in" / name).write_text(text)
    cfg = prepare.PrepareConfig(input=str(tmp_path / "in"), out=str(tmp_path / "bins"), val_frac=0.1, progress=False)
    n_train, n_val = prepare.prepare(cfg)
    tr = np.fromfile(tmp_path / "bins" / "train.bin", dtype=np.uint16)
    va = np.fromfile(tmp_path / "bins" / "val.bin", dtype=np.uint16)
    assert (len(tr), len(va)) == (n_train, n_val) and n_val == int((n_train + n_val) * 0.1)
    stream = np.concatenate([tr, va]).astype(np.int64)
    expected = "".join(docs[k] + "<|endoftext|>" for k in ("a.txt", "b.txt", "sub/c.txt"))  # sorted paths
    assert get_encoding().decode(stream.tolist()) == expected
    assert (stream == EOT_ID).sum() == 3 and (stream == PAUSE_ID).sum() == 0
    # the prepared folder pretrains, with pauses inserted at batch time
    args = ["--vocab=full", f"--data_dir={tmp_path}/bins", f"--out_dir={tmp_path}/o", "--n_layer=1", "--n_head=1",
            "--n_embd=8", "--block_size=16", "--batch_size=2", "--eval_iters=1", "--progress=False"]
    out = train.train(dataclasses.replace(parse_config(args, train.Config), max_iters=2, pause_frac=0.1))
    assert out["step"] == 2
    with pytest.raises(DataError, match="no .txt files"):
        prepare.prepare(dataclasses.replace(cfg, input=str(tmp_path / "bins")))


class RangeHandler:
    """A loopback HTTP server over a folder that honours 'Range: bytes=N-' (as real hosts do)."""

    @staticmethod
    def serve(folder):
        import functools
        import http.server
        import threading

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                rng = self.headers.get("Range")
                if not rng:
                    return super().do_GET()
                start = int(rng.split("=")[1].rstrip("-"))
                body = open(self.translate_path(self.path), "rb").read()[start:]
                self.send_response(206)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=folder))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


def test_prepare_named_corpus_downloads_resumes_and_splits_documents(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    stories = ["Once upon a time there was a cat.", "The dog ran.\nIt was happy.", "The end."]
    (site / "train.txt").write_text("\n<|endoftext|>\n".join(stories[:2]) + "\n<|endoftext|>\n")
    (site / "valid.txt").write_text(stories[2] + "\n")
    server = RangeHandler.serve(str(site))
    base = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setitem(prepare.SOURCES, "tiny", {"train": [f"{base}/train.txt"], "val": [f"{base}/valid.txt"],
                                               "split_on": "<|endoftext|>"})
    out = tmp_path / "bins"
    (out / "raw").mkdir(parents=True)
    raw = (site / "train.txt").read_bytes()
    (out / "raw" / "train.txt.part").write_bytes(raw[:10])  # an interrupted download, to be resumed
    cfg = prepare.PrepareConfig(name="tiny", out=str(out), val_frac=0.2, progress=False)
    try:
        prepare.prepare(cfg)
    finally:
        server.shutdown()
    assert (out / "raw" / "train.txt").read_bytes() == raw

    def text_of(split):
        return get_encoding().decode(np.fromfile(out / f"{split}.bin", dtype=np.uint16).astype(np.int64).tolist())
    # train.bin holds the train file's stories, val.bin exactly the official validation file's: one end
    # token per story (the literal separators became real ones), and no validation story in train.bin
    train_docs, val_docs = text_of("train").split("<|endoftext|>"), text_of("val").split("<|endoftext|>")
    assert [t.strip() for t in train_docs] == stories[:2] + [""]
    assert [t.strip() for t in val_docs] == stories[2:] + [""]
    # no network behind an address: a clear one-line error that says a rerun resumes
    monkeypatch.setitem(prepare.SOURCES, "gone", {"train": ["http://127.0.0.1:9/x.txt"], "val": [], "split_on": ""})
    with pytest.raises(DataError, match="download of .* failed.*resume"):
        prepare.prepare(dataclasses.replace(cfg, name="gone", out=str(tmp_path / "gone")))


def test_prepare_command_line_errors_are_one_line_also_from_the_old_command(tmp_path):
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.abspath(prepare.__file__))
    for argv in (["prepare.py"], ["data.py", "prepare"]):  # data.py prepare hands over to prepare.py
        p = subprocess.run([sys.executable, *argv, f"--input={tmp_path}/nowhere", f"--out={tmp_path}/o"], cwd=root,
                           capture_output=True, text=True)
        assert p.returncode == 2 and p.stderr.strip() == f"prepare.py: input not found: '{tmp_path}/nowhere'"
