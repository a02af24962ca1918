"""The bad-input corpus: every numeric knob at its edges, every kind of file where a model should
be, text that is not text, and (in test_streams.py) every stream condition and an early Ctrl+C.

Each case says what a person must see: the exit status, and one line on stderr that holds the
given words (never a traceback), or for inputs that are valid however odd, correct output.
In-process (CliRunner) through the same command group as the real entry point.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import pytest
import torch

from gpt_tui.errors import UsageError  # noqa: F401 - the class behind status 2

INF, NAN = "inf", "nan"
ROOT = Path(__file__).resolve().parents[2]


def one_line_error(result, status: int, words: str) -> str:
    assert result.exit_code == status, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpt-tui: "), result.stderr
    assert words in lines[0], lines[0]
    return lines[0]


def ok_json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# -- numeric knobs -------------------------------------------------------------------------------------

# (option, value, None for valid) or the words of the refusal; all through `next`, which reports
# how many tokens survive: a valid knob always leaves at least one.
NEXT_KNOBS = [
    ("-t", NAN, "temperature must be a number ≥ 0"),
    ("-t", "-inf", "temperature must be a number ≥ 0"),
    ("-t", "-1", "temperature must be a number ≥ 0"),
    ("-t", "-1e-300", "temperature must be a number ≥ 0"),
    ("-t", "0", None), ("-t", "-0.0", None), ("-t", "1e-45", None), ("-t", "5e-324", None),
    ("-t", "1e-300", None), ("-t", "1e308", None), ("-t", INF, None), ("-t", "1", None),
    ("-p", NAN, "top-p must be in (0, 1]"), ("-p", INF, "top-p must be in (0, 1]"),
    ("-p", "-inf", "top-p must be in (0, 1]"), ("-p", "0", "top-p must be in (0, 1]"),
    ("-p", "-0.0", "top-p must be in (0, 1]"), ("-p", "1.0000001", "top-p must be in (0, 1]"),
    ("-p", "1e-300", None), ("-p", "5e-324", None), ("-p", "1e-45", None), ("-p", "1", None),
    ("-p", "0.9999999999", None),
    ("-k", "-1", "top-k must be a whole number ≥ 0"), ("-k", "0", None), ("-k", "1", None),
    ("-k", str(2**70), None), ("-k", "50257", None),
]


@pytest.mark.parametrize("option, value, refusal", NEXT_KNOBS)
def test_next_knobs(cli, model_dir, option, value, refusal):
    result = cli("next", "The cat sat", "--model", model_dir, option, value, "--json")
    if refusal:
        one_line_error(result, 2, refusal)
        return
    out = ok_json(result)
    assert out["survivors"] >= 1
    probs = [c["adjusted_prob"] for c in out["candidates"]]
    assert all(p is not None and 0 <= p <= 1 for p in probs)
    assert max(probs) > 0  # the best candidate always survives
    tiny = option == "-t" and 0 <= float(value) < 1e-40 or option == "-p" and float(value) < 1e-40
    if tiny or option == "-k" and value == "1":
        assert out["survivors"] == 1 and probs[0] == 1.0  # greedy in the limit: all on the best token


@pytest.mark.parametrize("option, value, refusal", [k for k in NEXT_KNOBS if k[0] != "-k" or k[2]])
def test_generate_knobs(cli, model_dir, option, value, refusal):
    """The same knobs through generation: what `next` accepts, generate samples from (no torch error)."""
    result = cli("generate", "The cat", "--model", model_dir, option, value, "--max-new-tokens", "4", "--seed", "1", "--json")
    if refusal:
        one_line_error(result, 2, refusal)
        return
    out = ok_json(result)
    assert len(out["tokens"]) >= 1 and all(0 < t["prob"] <= 1 for t in out["tokens"])


@pytest.mark.parametrize("args, status, words", [
    (["generate", "x", "--seed", str(2**70)], 2, "--seed"),
    (["generate", "x", "--seed", str(2**64)], 2, "--seed"),
    (["generate", "x", "--seed", "-1"], 2, "--seed"),
    (["generate", "x", "--seed", "1e3"], 2, "--seed"),
    (["generate", "x", "--max-new-tokens", "0"], 2, "--max-new-tokens"),
    (["generate", "x", "--max-new-tokens", "-5"], 2, "--max-new-tokens"),
    (["next", "x", "--top", "0"], 2, "--top"),
    (["next", "x", "-t", "abc"], 2, "--temperature"),
    (["next", "x", "-k", "1.5"], 2, "--top-k"),
    (["attention", "x", "--layer", "-1"], 2, "3 layers (0–2)"),
    (["attention", "x", "--layer", str(2**70)], 2, "3 layers (0–2)"),
    (["attention", "x", "--head", "3"], 2, "3 heads per layer"),
    (["neighbours", "--id", "-1"], 1, "outside the vocabulary"),
    (["neighbours", "--id", str(2**70)], 1, "outside the vocabulary"),
    (["neighbours", "--id", "50257"], 1, "outside the vocabulary"),
    (["neighbours", "x", "--top", "0"], 2, "--top"),
    (["next", "x", "--device", ""], 2, "is not a device"),
    (["next", "x", "--device", "cuda:99"], 1, "CUDA"),
    (["next", "x", "--device", "tpu"], 2, "is not a device"),
    (["next", "x", "--dtype", "float16"], 1, "float16 is not supported on the CPU"),
    (["next", "x", "--dtype", "int8"], 2, "is not one of auto, float32, bfloat16, float16"),
])
def test_other_knobs(cli, model_dir, args, status, words):
    one_line_error(cli(*args, "--model", model_dir), status, words)


def test_seed_at_the_top_of_its_range_is_fine(cli, model_dir):
    out = ok_json(cli("generate", "x", "--model", model_dir, "--seed", str(2**64 - 1), "--max-new-tokens", "2", "--json"))
    assert out["seed"] == 2**64 - 1 and len(out["tokens"]) == 2


TRAIN_KNOBS = [
    (["--minutes", NAN], "--minutes"), (["--minutes", INF], "--minutes"), (["--minutes", "-inf"], "--minutes"),
    (["--minutes", "0"], "--minutes"), (["--minutes", "-0.0"], "--minutes"), (["--minutes", "-1"], "--minutes"),
    (["--tokens", "0"], "--tokens"), (["--tokens", "-100"], "--tokens"),
    (["--minutes", "1", "--tokens", "-1"], "--tokens"),
    (["--minutes", "1", "--batch-size", "0"], "--batch-size"), (["--minutes", "1", "--batch-size", "-1"], "--batch-size"),
    (["--minutes", "1", "--n-layer", "0"], "--n-layer"), (["--minutes", "1", "--n-head", "0"], "--n-head"),
    (["--minutes", "1", "--n-embd", "0"], "--n-embd"), (["--minutes", "1", "--n-ctx", "0"], "--n-ctx"),
    (["--minutes", "1", "--n-embd", "100", "--n-head", "3"], "divisible"),
    (["--minutes", "1", "--lr", NAN], "--lr"), (["--minutes", "1", "--lr", "0"], "--lr"),
    (["--minutes", "1", "--lr", INF], "--lr"), (["--minutes", "1", "--warmup-steps", "-1"], "--warmup-steps"),
    (["--minutes", "1", "--eval-every", "0"], "--eval-every"), (["--minutes", "1", "--eval-every", NAN], "--eval-every"),
    (["--minutes", "1", "--dropout", "1"], "--dropout"), (["--minutes", "1", "--dropout", NAN], "--dropout"),
    (["--minutes", "1", "--dropout", "-0.1"], "--dropout"), (["--minutes", "1", "--threads", "0"], "--threads"),
    (["--minutes", "1", "--precision", "fp8"], "--precision"), (["--minutes", "1", "--seed", "-1"], "--seed"),
    (["--minutes", "1", "--repeat-fraction", "1.5"], "--repeat-fraction"),
    (["--minutes", "1", "--max-span", "8"], "--max-span"),
    (["--minutes", "1", "--repeat-fraction", NAN], "--repeat-fraction"),
    (["--minutes", "1", "--random-fraction", "-0.5"], "--random-fraction"),
    (["--minutes", "1", "--echo-fraction", "2"], "--echo-fraction"),
    (["--minutes", "1", "--gate-rare", "-1"], "--gate-rare"),
    (["--minutes", "1", "--average", "1"], "--average"), (["--minutes", "1", "--average", NAN], "--average"),
    ([], "give a budget"),
]


@pytest.mark.parametrize("args, words", TRAIN_KNOBS)
def test_train_knobs(cli, tmp_path, args, words):
    """Refused before any work: no corpus is read, nothing is written, nothing trains forever."""
    one_line_error(cli("train", "--corpus", tmp_path / "none", "--out", tmp_path / "out", *args), 2, words)
    assert not (tmp_path / "out").exists()


def test_train_on_a_corpus_too_small_for_its_windows(cli, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "train.txt").write_text("a few words")
    (corpus / "val.txt").write_text("fewer")
    one_line_error(cli("train", "--corpus", corpus, "--out", tmp_path / "out", "--tokens", "100", "--n-ctx", "16",
                       "--n-layer", "1", "--n-head", "1", "--n-embd", "8"), 1, "too few for windows of --n-ctx 16")


# -- text ------------------------------------------------------------------------------------------------


def test_invalid_utf8_is_the_same_answer_from_an_argument_and_from_stdin(cli):
    # Python hands an argument's undecodable bytes over as surrogate escapes (b"a\xffb" -> "a\udcffb").
    from_argument = cli("tokenize", "ok \udcff\udcfe")
    from_stdin = cli("tokenize", input=b"ok \xff\xfe")
    assert one_line_error(from_argument, 1, "not valid UTF-8 (byte 0xff at offset 3)")
    assert one_line_error(from_stdin, 1, "not valid UTF-8 (byte 0xff at offset 3)")


@pytest.mark.parametrize("command", ["tokenize", "next", "score", "generate"])
def test_a_lone_surrogate_is_not_text(cli, model_dir, command):
    one_line_error(cli(command, "a\ud800b", "--model", model_dir), 1, "lone surrogate (U+D800 at character 1)")


@pytest.mark.parametrize("stdin, text", [
    (b"a\r\nb\r\n", "a\nb"), (b"a\nb\n", "a\nb"), (b"a\r\n", "a"), (b"a\n\n", "a\n"), (b"a\rb", "a\rb"),
    (b"\xef\xbb\xbfa", "\ufeffa"), (b"a\x00b", "a\x00b"),
])
def test_stdin_line_ends(cli, stdin, text):
    """stdin is read as Python's text mode reads it: CRLF is a line end, the last one is dropped."""
    out = ok_json(cli("tokenize", "--json", input=stdin))
    assert b"".join(bytes.fromhex(t["bytes"]) for t in out["tokens"]).decode() == text


def test_stdin_beyond_the_limit_is_refused(cli, monkeypatch):
    import gpt_tui.cli

    monkeypatch.setattr(gpt_tui.cli, "STDIN_LIMIT", 2**20)
    one_line_error(cli("tokenize", "--ids", input=b"x" * (2**20 + 1)), 2, "stdin holds more than 1 MiB")


@pytest.mark.parametrize("command", ["next", "score", "attention", "generate"])
def test_empty_text(cli, model_dir, command):
    if command == "generate":  # an empty prompt starts a new document
        assert ok_json(cli(command, "", "--model", model_dir, "--max-new-tokens", "2", "--seed", "1", "--json"))["tokens"]
        return
    one_line_error(cli(command, "", "--model", model_dir), 1, "the text is empty")


def test_score_allow_special(cli, model_dir):
    plain = ok_json(cli("score", "<|endoftext|>hi", "--model", model_dir, "--json"))
    special = ok_json(cli("score", "<|endoftext|>hi", "--model", model_dir, "--allow-special", "--json"))
    assert 50256 not in [t["id"] for t in plain["tokens"]]
    assert [t["id"] for t in special["tokens"]][0] == 50256 and len(special["tokens"]) == 2


@pytest.mark.parametrize("command", ["next", "score", "attention", "generate"])
def test_a_text_longer_than_the_context_says_what_it_dropped(cli, model_dir, command):
    long = " ".join(["word"] * 100)  # 100 tokens; the model's context is 32
    extra = ["--max-new-tokens", "1", "--seed", "1"] if command == "generate" else []
    result = cli(command, long, "--model", model_dir, "--json", *extra)
    out = ok_json(result)
    assert out["dropped"] == (100 - 31 if command == "generate" else 100 - 32)  # generate keeps a place free
    assert "dropped from the front" in result.stderr


def test_no_text_and_no_stdin(cli, model_dir, monkeypatch):
    import sys

    monkeypatch.setattr(sys, "stdin", None)  # started with stdin closed (`<&-`)
    from gpt_tui.cli import read_text

    with pytest.raises(UsageError, match="no text given"):
        read_text(None)
    assert read_text(None, optional=True) == ""


# -- files where a model should be -----------------------------------------------------------------------


def _copy(model_dir, tmp_path, name="m"):
    return shutil.copytree(model_dir, tmp_path / name)


def _edit_config(path, **changes):
    config = json.loads((path / "config.json").read_text())
    config.update(changes)
    (path / "config.json").write_text(json.dumps(config))
    return path


def _edit_weights(path, edit):
    from safetensors.torch import load_file, save_file

    state = load_file(str(path / "model.safetensors"))
    edit(state)
    save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})
    return path


def _key(state, suffix):
    return next(k for k in state if k.endswith(suffix))


def _extra(state):
    state[_key(state, "h.0.mlp.c_fc.weight").replace("c_fc", "mystery")] = torch.zeros(2, 2)


def _nan(state):
    state[_key(state, "h.1.mlp.c_fc.weight")][3, 5] = float("nan")


def _inf(state):
    state[_key(state, "h.0.ln_1.bias")][0] = float("inf")


def _int8(state):
    key = _key(state, "h.0.attn.c_attn.weight")
    state[key] = state[key].to(torch.int8)


def _overflow(state):
    """Finite weights whose activations overflow float32: the outputs, not the file, are non-finite."""
    for key in state:
        if key.endswith(("ln_f.weight", "ln_f.bias")):
            state[key] = torch.full_like(state[key], 3e38)


def _truncate(path, name="model.safetensors", keep=0.5):
    data = (path / name).read_bytes()
    (path / name).write_bytes(data[: int(len(data) * keep)])
    return path


def _fifo(path):
    os.mkfifo(path)
    return path


def _safetensors_header_only(path):
    header = json.dumps({"wte.weight": {"dtype": "F32", "shape": [10**12, 10**6], "data_offsets": [0, 4 * 10**18]}})
    path.write_bytes(struct.pack("<Q", len(header)) + header.encode())
    return path


FILE_CASES = {
    # name: (build(model_dir, tmp_path) -> the --model argument, status, words); status 0 = it loads
    "fifo": (lambda m, t: _fifo(t / "w.safetensors"), 1, "a FIFO, not a regular file or a directory"),
    "fifo weights in a directory": (lambda m, t: (_copy(m, t), os.remove(t / "m/model.safetensors"),
                                                   _fifo(t / "m/model.safetensors"))[0], 1, "a FIFO, not a regular file"),
    "fifo config.json": (lambda m, t: (_copy(m, t), os.remove(t / "m/config.json"), _fifo(t / "m/config.json"))[0],
                         1, "config.json: a FIFO"),
    "character device": (lambda m, t: "/dev/null", 1, "a character device"),
    "directory without config": (lambda m, t: t, 1, "no config.json — not a model directory"),
    "directory named like a file": (lambda m, t: (t / "x.safetensors").mkdir() or t / "x.safetensors", 1,
                                    "no config.json"),
    "symlink loop": (lambda m, t: os.symlink(t / "loop", t / "loop") or t / "loop", 1, "too many levels of symbolic links"),
    "dangling symlink": (lambda m, t: os.symlink(t / "gone", t / "link.pt") or t / "link.pt", 1, "no such file or directory"),
    "missing": (lambda m, t: t / "nothing.pt", 1, "no such file or directory, and not a known model"),
    "empty .safetensors": (lambda m, t: (t / "e.safetensors").write_bytes(b"") and 0 or t / "e.safetensors", 1, "empty"),
    "empty .bin": (lambda m, t: (t / "e.bin").write_bytes(b"") and 0 or t / "e.bin", 1, "the file is empty"),
    "random bytes .bin": (lambda m, t: (t / "r.bin").write_bytes(b"GARBAGE" + bytes(range(256)) * 16) and 0 or t / "r.bin",
                          1, "not a checkpoint gpt-tui can read"),
    "random bytes after a pickle mark": (lambda m, t: (t / "r.pt").write_bytes(b"\x80\x02" + bytes(range(200, 256)) * 9)
                                         and 0 or t / "r.pt", 1, "not a readable PyTorch checkpoint"),
    "text file .pt": (lambda m, t: (t / "t.pt").write_text("hello") and 0 or t / "t.pt", 1, "not a checkpoint"),
    "truncated safetensors": (lambda m, t: _truncate(_copy(m, t)), 1, "not a readable .safetensors file"),
    "truncated torch zip": (lambda m, t: (torch.save({"wte.weight": torch.zeros(4, 4)}, t / "z.pt"),
                                          _truncate(t, "z.pt"))[1] / "z.pt", 1, "not a readable PyTorch checkpoint"),
    "safetensors header promising a terabyte": (lambda m, t: _safetensors_header_only(t / "big.safetensors"), 1,
                                                "not a readable .safetensors file"),
    "safetensors named .pt": (lambda m, t: shutil.copy(m / "model.safetensors", t / "w.pt"), 0, None),
    "int8 weights": (lambda m, t: _edit_weights(_copy(m, t), _int8), 1, "stored as int8"),
    "an extra tensor": (lambda m, t: _edit_weights(_copy(m, t), _extra), 1,
                        "the weights do not fit a GPT-2 of this shape (0 missing, 1 unexpected tensors, e.g. "),
    "NaN weights": (lambda m, t: _edit_weights(_copy(m, t), _nan), 1, "holds NaN or infinite values"),
    "inf weights": (lambda m, t: _edit_weights(_copy(m, t), _inf), 1, "holds NaN or infinite values"),
    "weights that overflow": (lambda m, t: _edit_weights(_copy(m, t), _overflow), 1,
                              "the model produced non-finite values"),
    "config.json a list": (lambda m, t: (_copy(m, t), (t / "m/config.json").write_text("[1, 2]"))[0], 1,
                           "expected a JSON object {…}, found list"),
    "config.json null": (lambda m, t: (_copy(m, t), (t / "m/config.json").write_text("null"))[0], 1,
                         "found null"),
    "config.json not JSON": (lambda m, t: (_copy(m, t), (t / "m/config.json").write_text("{n_layer: 3"))[0], 1,
                             "not valid JSON"),
    "config.json not UTF-8": (lambda m, t: (_copy(m, t), (t / "m/config.json").write_bytes(b"{\"a\": \"\xff\"}"))[0],
                              1, "not valid JSON"),
    "n_head 0": (lambda m, t: _edit_config(_copy(m, t), n_head=0), 1, "n_head must be a whole number ≥ 1, not 0"),
    "n_head a string": (lambda m, t: _edit_config(_copy(m, t), n_head="3"), 1, "n_head must be a whole number"),
    "n_head not dividing n_embd": (lambda m, t: _edit_config(_copy(m, t), n_head=5), 1, "divisible by n_head"),
    "string epsilon": (lambda m, t: _edit_config(_copy(m, t), layer_norm_epsilon="1e-5"), 1,
                       "layer_norm_epsilon must be a number > 0"),
    "NaN epsilon": (lambda m, t: (_copy(m, t), (t / "m/config.json").write_text(
        (t / "m/config.json").read_text().replace('"layer_norm_epsilon": 1e-05', '"layer_norm_epsilon": NaN')))[0],
        1, "layer_norm_epsilon must be a number > 0"),
    "n_layer 10,000": (lambda m, t: _edit_config(_copy(m, t), n_layer=10_000), 1,
                       "the configuration says 10000 layers but the weights hold 3"),
    "n_layer 10**12": (lambda m, t: _edit_config(_copy(m, t), n_layer=10**12), 1, "weights hold 3"),
    "n_layer -1": (lambda m, t: _edit_config(_copy(m, t), n_layer=-1), 1, "n_layer must be a whole number ≥ 1"),
    "n_embd that the weights are not": (lambda m, t: _edit_config(_copy(m, t), n_embd=96, n_head=3), 1,
                                        "wte.weight is 50257 × 48"),
    "n_positions that the weights are not": (lambda m, t: _edit_config(_copy(m, t), n_positions=64), 1,
                                             "wpe.weight is 32 × 48"),
    # A family the engine has no reader for, and one it has, given a GPT-2 config's fields.
    "model_type not supported": (lambda m, t: _edit_config(_copy(m, t), model_type="bert"), 1,
                                 "model_type 'bert' is not supported (gpt2, "),
    "GPT-2 fields labelled llama": (lambda m, t: _edit_config(_copy(m, t), model_type="llama"), 1,
                                    "missing or odd field 'num_attention_heads'"),
    "vocab.json a list": (lambda m, t: (_copy(m, t), (t / "m/vocab.json").write_text("[]"),
                                        (t / "m/merges.txt").write_text("#version: 0.2\n"))[0],
                          1, "are not a GPT-2 tokenizer"),
}


@pytest.mark.parametrize("case", FILE_CASES)
def test_files_where_a_model_should_be(cli, model_dir, tmp_path, case):
    build, status, words = FILE_CASES[case]
    (tmp_path / "files").mkdir()
    where = str(build(model_dir, tmp_path / "files"))
    result = cli("next", "The cat", "--model", where, "--json")
    if status == 0:
        assert ok_json(result)["candidates"]
        return
    one_line_error(result, status, words)


@pytest.mark.parametrize("case", ["fifo", "character device", "symlink loop", "missing", "directory without config",
                                  "fifo config.json", "vocab.json a list", "config.json a list"])
def test_tokenize_resolves_the_model_as_the_loader_does(cli, model_dir, tmp_path, case):
    """`tokenize --model` never falls back to gpt2 for a model that is not there."""
    build, _, words = FILE_CASES[case]
    (tmp_path / "files").mkdir()
    where = str(build(model_dir, tmp_path / "files"))
    result = cli("tokenize", "x", "--model", where, "--ids")
    if case == "config.json a list":
        words = "expected a JSON object"
    one_line_error(result, 1, words)


def test_unreadable_files(model_dir, tmp_path):
    """Permission denied says so (not "no such file"). Run without the power to read everything:
    as root, the process drops CAP_DAC_OVERRIDE; as anyone else, a mode of 000 suffices."""
    import subprocess
    import sys

    base = tmp_path / "u"
    shutil.copytree(model_dir, base)
    (base / "model.safetensors").chmod(0)
    prefix = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("root without setpriv cannot be denied a read")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([*prefix, sys.executable, "-m", "gpt_tui", "next", "x", "--model", str(base)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"gpt-tui: {base / 'model.safetensors'}: permission denied"
