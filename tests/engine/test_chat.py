"""Chat as one document: the plain framing, a model's own template (sandboxed), special tokens."""

from __future__ import annotations

import json
import shutil

import pytest

from gpt_tui.engine.chat import (ChatError, Turn, find_chat_template, parse_turn, plain_document, template_document,
                                 turns_from_json)

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
TURNS = [Turn("system", "Be brief."), Turn("user", "Hi there"), Turn("assistant", "Hello!"), Turn("user", "Why?")]


def test_plain_framing_is_one_document_ending_where_the_assistant_speaks():
    doc = plain_document(TURNS)
    assert doc.text == "<|endoftext|>Be brief.\n\nUser: Hi there\nAssistant: Hello!\nUser: Why?\nAssistant:"
    assert [(s.start, s.end, s.text) for s in doc.special] == [(0, 13, "<|endoftext|>")]
    assert [(role, doc.text[s.start:s.end]) for role, s in doc.turns] == [
        ("system", "Be brief."), ("user", "Hi there"), ("assistant", "Hello!"), ("user", "Why?")]
    assert doc.format == "plain" and "\nUser:" in doc.stop
    assert not plain_document(TURNS, add_generation_prompt=False).text.endswith("Assistant:")


def test_the_models_template_is_rendered_and_its_special_tokens_found():
    doc = template_document(CHATML, TURNS[1:], special_tokens=["<|im_start|>", "<|im_end|>"])
    assert doc.text == ("<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
                        "<|im_start|>user\nWhy?<|im_end|>\n<|im_start|>assistant\n")
    assert [s.text for s in doc.special] == ["<|im_start|>", "<|im_end|>"] * 3 + ["<|im_start|>"]
    assert all(doc.text[s.start:s.end] == s.text for s in doc.special)
    assert doc.format == "template"


def test_a_template_cannot_reach_python():
    """Jinja's sandbox: a template from a checkpoint cannot walk to classes or call unsafe code."""
    with pytest.raises(ChatError, match="chat template"):
        template_document("{{ messages.__class__.__mro__[1].__subclasses__() }}", TURNS)
    with pytest.raises(ChatError, match="refused the turns: no system"):
        template_document("{% if messages[0]['role'] == 'system' %}{{ raise_exception('no system') }}{% endif %}",
                          TURNS)


def test_template_found_in_a_model_directory(tmp_path):
    assert find_chat_template(str(tmp_path)) is None
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({
        "chat_template": CHATML, "eos_token": "<|im_end|>",
        "added_tokens_decoder": {"50257": {"content": "<|im_start|>", "special": True}}}))
    found = find_chat_template(str(tmp_path / "model.safetensors"))
    assert found.template == CHATML and found.eos_token == "<|im_end|>" and "<|im_start|>" in found.special_tokens
    (tmp_path / "chat_template.jinja").write_text("{{ messages[0]['content'] }}")
    assert find_chat_template(str(tmp_path)).template == "{{ messages[0]['content'] }}"  # the newer file wins


def test_turns_from_people_and_from_programs():
    assert parse_turn("User:  What is 2+2? ") == Turn("user", "What is 2+2?")
    assert parse_turn("assistant: a: b") == Turn("assistant", "a: b")
    with pytest.raises(ChatError, match="ROLE: TEXT"):
        parse_turn("hello there")
    with pytest.raises(ChatError, match="unknown role"):
        Turn("robot", "beep")
    assert turns_from_json('[{"role": "user", "content": "hi"}]') == [Turn("user", "hi")]
    with pytest.raises(ChatError, match="not valid JSON"):
        turns_from_json("[{")
    with pytest.raises(ChatError, match="content"):
        turns_from_json('[{"role": "user"}]')


def test_session_encodes_framing_specials_as_special_and_typed_ones_as_text(session):
    doc = session.chat_document([Turn("user", "say <|endoftext|> please")])
    ids = session.encode_document(doc)
    eot = session.tokenizer.eot_id
    assert ids[0] == eot and ids.count(eot) == 1  # the typed one stays text
    assert session.tokenizer.decode(ids) == doc.text


def test_session_uses_a_template_the_model_ships(hf_dir, tmp_path, gpt2_tok):
    from gpt_tui.engine.loading import load_model
    from gpt_tui.engine.session import Session

    folder = tmp_path / "with-template"
    shutil.copytree(hf_dir, folder)
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": CHATML}))
    s = Session(load_model(str(folder), device="cpu", dtype="float32"))
    doc = s.chat_document([Turn("user", "Hi")])
    assert doc.format == "template" and doc.text == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
