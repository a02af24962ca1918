"""Tiny random checkpoints of the Llama-like families, built offline with `transformers`
(`save_pretrained`) and a tokenizer.json built with `tokenizers` — what the family tests load.

Each family is built with the switches that make it what it is (grouped-query attention
everywhere; Llama 3's rotary scaling, Qwen's QKV biases, Qwen 3's QK-norm and wide heads, Gemma's
1+w norms, soft-caps, sandwich norms and sliding windows, Mistral's window, Phi-3's fused matrices
and partial rotary), and with weights large enough that attention is far from uniform.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import torch

# Text in several scripts, with characters the small vocabularies never learn (so they fall back
# to bytes) — what every tokenizer test encodes.
CORPUS = [
    "The quick brown fox jumps over the lazy dog. Attention is all you need.",
    "Le cœur a ses raisons que la raison ne connaît point. Où est la gare ?",
    "Der schnelle braune Fuchs springt über den faulen Hund. Straße, Größe, Äpfel.",
    "Быстрая коричневая лиса перепрыгивает через ленивую собаку.",
    "素早い茶色の狐が怠け者の犬を飛び越える。注意こそが必要なすべてです。",
    "快速的棕色狐狸跳过了懒狗。",
    "مرحبا بالعالم. النموذج يتنبأ بالكلمة التالية.",
    "def forward(self, x):\n    return self.proj(x) + 1  # residual\n",
    "Emoji: 🦊🐶🚀 and 👩‍🔬 — the end.",
    "    indented\n\n\ttabs and   spaces   ",
]
SAMPLE = ("Hello world! Grüße aus München — Привет, мир. 你好，世界。 こんにちは 🦊🚀 "
          "x = f(y)  # done\n\tα β γ")

SPECIALS_BYTE_LEVEL = ["<|begin_of_text|>", "<|end_of_text|>", "<|im_start|>", "<|im_end|>"]
SPECIALS_SENTENCEPIECE = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]


def byte_level_tokenizer(bos: bool) -> str:
    """A byte-level BPE tokenizer.json (Llama 3, Qwen, SmolLM shape); bos: the post-processor adds
    <|begin_of_text|> in front of every text, as Llama 3's does (Qwen's adds nothing)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=420, special_tokens=SPECIALS_BYTE_LEVEL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    if bos:
        bos_id = tok.token_to_id("<|begin_of_text|>")
        tok.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                                          special_tokens=[("<|begin_of_text|>", bos_id)])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok.to_str()


def sentencepiece_alphabet(size: int) -> list[str]:
    """The `size` commonest characters of the corpus (spaces as ▁), ties broken by the character.
    Left to `limit_alphabet` alone, the trainer breaks ties in hash order, so each process built
    another tokenizer, and a test that counted tokens passed or failed by chance."""
    counts = Counter("".join(CORPUS).replace(" ", "\u2581"))
    return sorted(counts, key=lambda ch: (-counts[ch], ch))[:size]


def sentencepiece_tokenizer(bos: bool = True, dummy_prefix: str | None = None) -> str:
    """A SentencePiece-style BPE tokenizer.json (Gemma shape): spaces written ▁, no pre-tokenizer,
    byte fallback to <0xNN> pieces for characters it has no piece for, <bos> added in front.

    dummy_prefix: a ▁ put before the text, as Llama 2, Mistral and Phi-3's files do — "normalizer"
    (Prepend, the older conversion) or "metaspace" (a Metaspace pre-tokenizer, prepend_scheme first)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    if dummy_prefix == "metaspace":
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    elif dummy_prefix == "normalizer":
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    else:
        tok.normalizer = normalizers.Replace(" ", "\u2581")
    trainer = trainers.BpeTrainer(vocab_size=360, special_tokens=SPECIALS_SENTENCEPIECE, limit_alphabet=70,
                                  initial_alphabet=sentencepiece_alphabet(70), show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    spec = json.loads(tok.to_str())
    vocab = spec["model"]["vocab"]
    for b in range(256):  # the byte pieces SentencePiece models carry for byte fallback
        vocab.setdefault(f"<0x{b:02X}>", len(vocab))
    spec["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"}]
        + ([{"type": "Strip", "content": " ", "start": 1, "stop": 0}] if dummy_prefix else [])}
    if bos:
        bos_id = vocab["<bos>"] if "<bos>" in vocab else tok.token_to_id("<bos>")
        spec["post_processor"] = {"type": "TemplateProcessing",
                                  "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}},
                                             {"Sequence": {"id": "A", "type_id": 0}}],
                                  "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                                  "special_tokens": {"<bos>": {"id": "<bos>", "ids": [bos_id], "tokens": ["<bos>"]}}}
    return json.dumps(spec)


CHATML = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
GEMMA_CHAT = ("{{ bos_token }}{% for m in messages %}<start_of_turn>{{ 'model' if m.role == 'assistant' else m.role }}\n"
              "{{ m.content }}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")

# What gpt-oss's own template leans on besides plain Jinja: today's date, {% break %}, tojson
HARMONY_LIKE = ("<|im_start|>system\nCurrent date: {{ strftime_now('%Y-%m-%d') }}<|im_end|>\n"
                "{% for m in messages %}{% if loop.index > 8 %}{% break %}{% endif %}"
                "<|im_start|>{{ m.role }}\n{{ m.content | tojson }}<|im_end|>\n{% endfor %}"
                "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")

# name -> (transformers classes, config overrides, tokenizer kind, tokenizer_config.json)
SMALL = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=128)
FAMILIES = {
    "llama": ("LlamaConfig", "LlamaForCausalLM",
              dict(rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                 "high_freq_factor": 4.0, "original_max_position_embeddings": 32}, rope_theta=500000.0),
              "byte_bos", {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"}),
    "smollm": ("LlamaConfig", "LlamaForCausalLM", dict(tie_word_embeddings=True, num_key_value_heads=1),
               "byte", {"eos_token": "<|end_of_text|>", "chat_template": CHATML}),
    "smollm3": ("SmolLM3Config", "SmolLM3ForCausalLM", dict(no_rope_layers=[1, 0, 1], pad_token_id=None), "byte",
                {"eos_token": "<|im_end|>", "chat_template": CHATML}),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", dict(tie_word_embeddings=True,
                                                      rope_scaling={"rope_type": "yarn", "factor": 4.0,
                                                                    "original_max_position_embeddings": 32}),
              "byte", {"eos_token": "<|im_end|>", "chat_template": CHATML, "add_bos_token": False}),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", dict(head_dim=24), "byte",
              {"eos_token": "<|im_end|>", "chat_template": CHATML}),
    "mistral": ("MistralConfig", "MistralForCausalLM", dict(sliding_window=5, rope_scaling={"rope_type": "linear", "factor": 2.0}),
                "sentencepiece_normalizer",
                {"bos_token": "<bos>", "eos_token": "<eos>", "add_bos_token": True}),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", dict(partial_rotary_factor=0.5, pad_token_id=0, bos_token_id=2,
                                                   eos_token_id=1),
             "sentencepiece_metaspace", {"bos_token": "<bos>", "eos_token": "<eos>"}),
    "phi3_long": ("Phi3Config", "Phi3ForCausalLM", dict(
        pad_token_id=0, bos_token_id=2, eos_token_id=1, original_max_position_embeddings=16,
        # "type", as Phi-3's own files write it (transformers 4.53 accepts nothing else here)
        rope_scaling={"type": "longrope", "short_factor": [1.0, 1.1, 1.3, 1.6, 2.0, 2.5, 3.0, 4.0],
                      "long_factor": [1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 12.0, 16.0]}),
                  "sentencepiece", {"bos_token": "<bos>", "eos_token": "<eos>"}),
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM", dict(head_dim=16, sliding_window=4, attn_logit_softcapping=3.0,
                                                         final_logit_softcapping=5.0, query_pre_attn_scalar=24),
               "sentencepiece", {"bos_token": "<bos>", "eos_token": "<eos>", "chat_template": GEMMA_CHAT}),
    "gemma3": ("Gemma3TextConfig", "Gemma3ForCausalLM",
               dict(head_dim=16, sliding_window=4, query_pre_attn_scalar=16,
                    layer_types=["sliding_attention", "full_attention", "sliding_attention"]),
               "sentencepiece", {"bos_token": "<bos>", "eos_token": "<eos>", "chat_template": GEMMA_CHAT,
                                 "add_bos_token": True}),
    # attention sinks, a mixture of 4 experts (2 a token), yarn, sliding layers between full ones
    "gpt_oss": ("GptOssConfig", "GptOssForCausalLM",
                dict(head_dim=16, num_local_experts=4, num_experts_per_tok=2, sliding_window=4,
                     layer_types=["sliding_attention", "full_attention", "sliding_attention"],
                     rope_theta=150000.0,  # the spelling of the real config.json, read by transformers 4 and 5
                     rope_scaling={"rope_type": "yarn", "factor": 4.0, "beta_fast": 32.0, "beta_slow": 1.0,
                                   "truncate": False, "original_max_position_embeddings": 32}),
                "byte", {"eos_token": "<|end_of_text|>", "chat_template": HARMONY_LIKE}),
}


def tokenizer_json(kind: str) -> str:
    if kind == "byte_bos":
        return byte_level_tokenizer(bos=True)
    if kind == "byte":
        return byte_level_tokenizer(bos=False)
    if kind.startswith("sentencepiece_"):  # sentencepiece_normalizer, sentencepiece_metaspace
        return sentencepiece_tokenizer(dummy_prefix=kind.removeprefix("sentencepiece_"))
    return sentencepiece_tokenizer()


def randomise_(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Weights large enough for peaked attention; norm gains near their identity (1, or 0 for Gemma's 1+w)."""
    gen = torch.Generator().manual_seed(seed)
    gemma = "Gemma" in type(model).__name__
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=gen) * (0.08 if "embed" in name and gemma else 0.2))
            elif name.endswith("sinks"):  # large enough that the weights on keys sum clearly below 1
                p.copy_(3.0 + torch.randn(p.shape, generator=gen) * 1.5)
            elif re.search(r"norm\.weight$", name):
                p.copy_((0.0 if gemma else 1.0) + torch.randn(p.shape, generator=gen) * 0.2)
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    return model


def build(family: str, path: Path, seed: int = 0, dtype: torch.dtype = torch.float32, shard_bytes: str | None = None,
          overrides: dict | None = None):
    """Write a random `family` checkpoint to path; return the transformers model (fp32, eager).
    overrides: config fields on top of the family's (another shape); dtype: the dtype saved;
    shard_bytes: save as shards of at most this size, with model.safetensors.index.json."""
    import transformers
    from tokenizers import Tokenizer

    config_name, model_name, family_overrides, tok_kind, tok_config = FAMILIES[family]
    path.mkdir(parents=True, exist_ok=True)
    tok_text = tokenizer_json(tok_kind)
    (path / "tokenizer.json").write_text(tok_text, encoding="utf-8")
    (path / "tokenizer_config.json").write_text(json.dumps(tok_config), encoding="utf-8")
    n_vocab = Tokenizer.from_str(tok_text).get_vocab_size(with_added_tokens=True)
    config = getattr(transformers, config_name)(**{**SMALL, **family_overrides, **(overrides or {})},
                                                   vocab_size=n_vocab + 6)  # padded, as Qwen's
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = randomise_(getattr(transformers, model_name)(config), seed).eval()
    saved = model.to(dtype) if dtype != torch.float32 else model
    kwargs = {"max_shard_size": shard_bytes} if shard_bytes else {}
    saved.save_pretrained(str(path), **kwargs)
    return model.float().eval()
