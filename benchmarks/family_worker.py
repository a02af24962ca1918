"""One measured side of bench_families.py, run in its own process (as worker.py is for GPT-2):

    python benchmarks/family_worker.py TASK '{"json": "arguments"}'

prints one JSON line. The checkpoints are random, in the real shapes of SmolLM2-135M and
Qwen2.5-0.5B (speed depends on shapes, not values), with a byte-level tokenizer.json of exactly the
model's vocabulary (256 byte tokens, the rest never produced), so a text of N ASCII characters is
N tokens on both sides.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DTYPES = {"fp32": "float32", "bf16": "bfloat16"}
SHAPES = {
    "smollm2-135m": ("LlamaConfig", "LlamaForCausalLM", dict(
        hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
        vocab_size=49152, tie_word_embeddings=True, rope_theta=100000.0, max_position_embeddings=8192,
        rms_norm_eps=1e-5)),
    "qwen2.5-0.5b": ("Qwen2Config", "Qwen2ForCausalLM", dict(
        hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
        vocab_size=151936, tie_word_embeddings=True, rope_theta=1000000.0, max_position_embeddings=32768,
        rms_norm_eps=1e-6)),
}


def text_of(n: int) -> str:
    """n ASCII characters: n tokens under the byte-level tokenizer written with the checkpoint."""
    return "".join("abcdefghij klmnopqrst"[(7 * i) % 21] for i in range(n))


def _tokenizer_json(vocab_size: int) -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {c: i for i, c in enumerate(sorted(alphabet))}
    for i in range(len(vocab), vocab_size):
        vocab[f"<unused{i}>"] = i
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return tok.to_str()


def make_checkpoint(shape: str, path: str) -> dict:
    import torch
    import transformers

    config_name, model_name, kwargs = SHAPES[shape]
    torch.manual_seed(0)
    config = getattr(transformers, config_name)(**kwargs)
    model = getattr(transformers, model_name)(config).eval()
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    (out / "tokenizer.json").write_text(_tokenizer_json(config.vocab_size))
    (out / "tokenizer_config.json").write_text(json.dumps({"add_bos_token": False}))
    return {"parameters": sum(p.numel() for p in model.parameters())}


def _threads(n: int):
    import torch

    torch.set_num_threads(n)
    return torch


def _hf(ckpt: str, dtype: str, attn: str):
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(ckpt, dtype=getattr(torch, DTYPES[dtype]),
                                                attn_implementation=attn).eval()


def _session(ckpt: str, dtype: str):
    from gpt_tui.engine.loading import load_model
    from gpt_tui.engine.session import Session

    return Session(load_model(ckpt, device="cpu", dtype=DTYPES[dtype]))


def _timed(fn, reps: int) -> tuple[list[float], object]:
    first = fn()  # warm-up
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times, first


def generate(impl: str, ckpt: str, dtype: str, threads: int, reps: int, prompt: int, new_tokens: int) -> dict:
    torch = _threads(threads)
    ids = [ord(c) % 200 + 20 for c in text_of(prompt)]  # byte tokens
    if impl == "hf":
        model = _hf(ckpt, dtype, "sdpa")
        gc = model.generation_config
        gc.eos_token_id, gc.pad_token_id = None, 0
        x = torch.tensor([ids])

        def once():
            with torch.inference_mode():
                out = model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=new_tokens,
                                     min_new_tokens=0, do_sample=False, use_cache=True)
            return out[0, len(ids):].tolist()
        path = "transformers (sdpa attention)"
    else:
        from gpt_tui.engine.sampling import SamplingParams

        session = _session(ckpt, dtype)
        params = SamplingParams(temperature=0)

        def once():
            return [t.id for t in session.generate(ids, params, new_tokens, seed=0, stop_at_eot=False)]
        path = session.model.fast.reason
    times, tokens = _timed(once, reps)
    return {"tok_s": [new_tokens / t for t in times], "tokens": tokens, "path": path}


def analyse(impl: str, ckpt: str, dtype: str, threads: int, reps: int, tokens: int) -> dict:
    torch = _threads(threads)
    text = text_of(tokens)
    if impl == "hf":
        model = _hf(ckpt, dtype, "eager")
        from gpt_tui.engine.hf_tokenizer import tokenizer_for_dir

        x = torch.tensor([tokenizer_for_dir(Path(ckpt)).encode(text)])
        assert x.size(1) == tokens

        def once():
            with torch.inference_mode():
                return model(x, output_attentions=True, output_hidden_states=True).logits.shape[1]
        path = "transformers, eager attention, output_attentions + output_hidden_states"
    else:
        session = _session(ckpt, dtype)
        path = session.model.fast.reason
        shorter = text[:-1]

        def fresh():
            session._analyses.clear()
            session._pass.forget()

        if impl == "gpt-tui-analyse":
            def once():  # a text never seen: no cached analysis, no reusable KV cache
                fresh()
                analysis = session.analyse(text)
                analysis.attention.layer(0)
                return analysis.n_tokens
        else:  # one token typed: only the end runs again (timed alone)
            def once():
                fresh()
                session.analyse(shorter)
                start = time.perf_counter()
                session.analyse(text).attention.layer(0)
                return time.perf_counter() - start
    if impl == "gpt-tui-append":
        once()
        times = [once() for _ in range(reps)]
    else:
        times, _ = _timed(once, reps)
    return {"times": times, "path": path}


def main() -> None:
    task, args = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps({"make_checkpoint": make_checkpoint, "generate": generate, "analyse": analyse}[task](**args)))


if __name__ == "__main__":
    main()
