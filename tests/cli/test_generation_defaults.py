"""`generate` takes the knobs it is not given from the model's generation_config.json."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from gpt_tui.engine.tokenizer import get_tokenizer


def run_json(cli, *args):
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def gpt2_ids(text):
    return get_tokenizer("gpt2").encode(text)


@pytest.fixture
def model_with(model_dir, tmp_path):
    """A copy of the reference checkpoint with the given generation_config.json contents."""

    def make(contents) -> str:
        path = tmp_path / "model"
        shutil.copytree(model_dir, path, dirs_exist_ok=True)
        text = contents if isinstance(contents, str) else json.dumps(contents)
        (path / "generation_config.json").write_text(text)
        return str(path)

    return make


def test_knobs_not_given_come_from_generation_config(cli, model_with):
    path = model_with({"do_sample": True, "temperature": 0.5, "top_k": 3, "top_p": 0.9})
    out = run_json(cli, "generate", "Once upon a time", "--model", path, "--seed", 4, "--max-new-tokens", 12)
    assert (out["temperature"], out["top_k"], out["top_p"]) == (0.5, 3, 0.9)
    assert out["defaults_from"].endswith("generation_config.json") and out["given"] == []
    explicit = run_json(cli, "generate", "Once upon a time", "--model", path, "--seed", 4, "--max-new-tokens", 12,
                        "-t", 0.5, "-k", 3, "-p", 0.9)
    assert explicit["completion"] == out["completion"] and explicit["defaults_from"] is None
    raw = run_json(cli, "generate", "Once upon a time", "--model", path, "--seed", 4, "--max-new-tokens", 12,
                   "-t", 1, "-k", 0, "-p", 1)
    assert raw["completion"] != out["completion"]  # the file's knobs were really used


def test_given_knobs_win_over_the_file(cli, model_with, reference):
    path = model_with({"do_sample": True, "temperature": 1.5, "top_k": 40})
    out = run_json(cli, "generate", "Once upon a time", "--model", path, "-t", 0, "--max-new-tokens", 8, "--no-stop-at-eot")
    ids = gpt2_ids("Once upon a time")
    with torch.no_grad():
        ref = reference.generate(torch.tensor([ids]), max_new_tokens=8, do_sample=False, pad_token_id=50256)
    assert [t["id"] for t in out["tokens"]] == ref[0, len(ids):].tolist()
    assert (out["temperature"], out["top_k"], out["given"]) == (0.0, 40, ["temperature"])


def test_do_sample_false_means_greedy_as_in_hugging_face(cli, model_with, reference):
    path = model_with({"do_sample": False, "temperature": 0.7})
    out = run_json(cli, "generate", "Once upon a time", "--model", path, "--max-new-tokens", 8, "--no-stop-at-eot")
    ids = gpt2_ids("Once upon a time")
    with torch.no_grad():
        ref = reference.generate(torch.tensor([ids]), max_new_tokens=8, do_sample=False, pad_token_id=50256)
    assert [t["id"] for t in out["tokens"]] == ref[0, len(ids):].tolist()
    assert out["temperature"] == 0.0


def test_a_file_without_sampling_keys_leaves_the_raw_distribution(cli, model_dir):
    """save_pretrained writes a generation_config.json with no knobs: T=1, no cuts (not HF's top-k 50)."""
    assert (model_dir / "generation_config.json").exists()
    out = run_json(cli, "generate", "Once upon a time", "--model", model_dir, "--seed", 1, "--max-new-tokens", 4)
    assert (out["temperature"], out["top_k"], out["top_p"]) == (1.0, 0, 1.0)


@pytest.mark.parametrize("contents, words", [
    ("{not json", "unreadable"),
    ({"temperature": "hot"}, "temperature must be a number"),
    ({"top_k": 2.5}, "top_k must be an integer"),
    ({"top_p": 0}, "top-p must be in (0, 1]"),
])
def test_a_broken_generation_config_is_one_clear_line(cli, model_with, contents, words):
    result = cli("generate", "Once upon a time", "--model", model_with(contents), "--max-new-tokens", 2)
    assert result.exit_code != 0
    assert words in result.stderr and "generation_config.json" in result.stderr
    assert "Traceback" not in result.output


def test_help_says_where_the_defaults_come_from(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # one line per option: nothing wraps mid-word
    result = cli("generate", "--help")
    assert result.exit_code == 0
    options = result.stdout[result.stdout.index("--temperature"):]
    assert options.count("generation_config.json") >= 3  # beside each knob, not only in the summary
