"""One measured side of a benchmark, run in its own process by the benchmark scripts.

    python benchmarks/worker.py TASK '{"json": "arguments"}'

Prints one JSON line with the timings (seconds). The parent reads this process's peak RSS.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # gpt_tui from this checkout
sys.path.insert(0, str(HERE))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DTYPES = {"fp32": "float32", "bf16": "bfloat16"}


def _torch(threads: int):
    import torch

    torch.set_num_threads(threads)
    return torch


def _timed(fn, reps: int, warmup: int = 1) -> tuple[list[float], object]:
    first = None
    for _ in range(warmup):
        first = fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
        first = out if first is None else first
    return times, first


def _hf(ckpt: str, dtype: str, attn: str):
    import torch
    from transformers import GPT2LMHeadModel

    model = GPT2LMHeadModel.from_pretrained(ckpt, dtype=getattr(torch, DTYPES[dtype]), attn_implementation=attn)
    return model.eval()


def _session(ckpt: str, dtype: str):
    from gpt_tui.engine.loading import load_model
    from gpt_tui.engine.session import Session

    return Session(load_model(ckpt, device="cpu", dtype=DTYPES[dtype]))


def _fast_reason(model) -> str:
    report = getattr(model, "fast", None)
    return report.reason if report is not None else "plain"


# -- tasks ----------------------------------------------------------------------------------------------------


def make_checkpoint(shape: str, path: str) -> dict:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from common import SHAPES

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=50257, n_positions=1024, **SHAPES[shape])
    model = GPT2LMHeadModel(config).eval()
    Path(path).mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    return {"parameters": sum(p.numel() for p in model.parameters())}


def generate(impl: str, ckpt: str, dtype: str, threads: int, reps: int, prompt: int, new_tokens: int) -> dict:
    torch = _torch(threads)
    from common import prompt_ids

    ids = prompt_ids(prompt)
    start = time.perf_counter()
    if impl == "hf":
        model = _hf(ckpt, dtype, "sdpa")
        gc = model.generation_config
        gc.eos_token_id = None  # always generate new_tokens, as gpt-tui does with stop_at_eot=False
        gc.pad_token_id = 50256
        x = torch.tensor([ids])
        mask = torch.ones_like(x)
        load_s = time.perf_counter() - start

        def once():
            with torch.inference_mode():
                out = model.generate(input_ids=x, attention_mask=mask, max_new_tokens=new_tokens, min_new_tokens=0,
                                     do_sample=False, use_cache=True)
            return out[0, len(ids):].tolist()

        fast = "transformers (sdpa attention)"
    else:
        from gpt_tui.engine.sampling import SamplingParams

        session = _session(ckpt, dtype)
        load_s = time.perf_counter() - start
        params = SamplingParams(temperature=0)

        def once():
            return [t.id for t in session.generate(ids, params, new_tokens, seed=0, stop_at_eot=False)]

        fast = _fast_reason(session.model)
    times, tokens = _timed(once, reps)
    assert len(tokens) == new_tokens, f"{impl} generated {len(tokens)} tokens"
    return {"times": times, "tok_s": [new_tokens / t for t in times], "tokens": tokens, "load_s": load_s,
            "threads": torch.get_num_threads(), "path": fast}


def bandwidth(threads: int, mb: int, reps: int) -> dict:
    """Memory bandwidth as torch sees it: a large sum (reads) and a large copy (reads + writes)."""
    torch = _torch(threads)
    n = mb * 1024 * 1024 // 4
    x = torch.ones(n)
    y = torch.empty_like(x)
    read, _ = _timed(lambda: x.sum(), reps, warmup=2)
    copy, _ = _timed(lambda: y.copy_(x), reps, warmup=2)
    size = n * 4 / 1e9
    return {"read_gb_s": [size / t for t in read], "copy_gb_s": [2 * size / t for t in copy],
            "threads": torch.get_num_threads()}


def analyse(impl: str, ckpt: str, dtype: str, threads: int, reps: int, tokens: int) -> dict:
    torch = _torch(threads)
    from common import text_of

    text = text_of(tokens)
    start = time.perf_counter()
    if impl == "hf":
        model = _hf(ckpt, dtype, "eager")
        load_s = time.perf_counter() - start
        from gpt_tui.engine.tokenizer import get_tokenizer

        x = torch.tensor([get_tokenizer("gpt2").encode(text)])
        assert x.size(1) == tokens

        def once():
            with torch.inference_mode():
                out = model(x, output_attentions=True, output_hidden_states=True)
            return out.logits.shape[1]

        path = "transformers GPT2LMHeadModel, eager attention, output_attentions + output_hidden_states"
    else:
        session = _session(ckpt, dtype)
        load_s = time.perf_counter() - start
        path = _fast_reason(session.model)
        if impl == "gpt-tui-forward":
            from gpt_tui.engine.gpt import Trace

            x = torch.tensor([session.tokenizer.encode(text)])
            assert x.size(1) == tokens

            def once():
                trace = Trace()
                with torch.inference_mode():
                    logits = session.model(x, trace=trace)
                return logits.shape[1]
        elif impl == "gpt-tui-analyse":
            def once():  # a text never seen: no cached analysis, no reusable KV cache
                session._analyses.clear()
                session._pass.forget()
                analysis = session.analyse(text)
                analysis.attention.layer(0)  # the layer the attention panel shows
                return analysis.n_tokens
        elif impl == "gpt-tui-append":
            shorter = text_of(tokens - 1)

            def once():  # the user typed one more token: only the end is run again (timed alone)
                session._analyses.clear()
                session._pass.forget()
                session.analyse(shorter)
                start = time.perf_counter()
                session.analyse(text).attention.layer(0)
                return time.perf_counter() - start
        else:
            raise SystemExit(f"unknown impl {impl}")
    if impl == "gpt-tui-append":
        once()  # warm-up
        times = [once() for _ in range(reps)]
    else:
        times, _ = _timed(once, reps)
    return {"times": times, "load_s": load_s, "threads": torch.get_num_threads(), "path": path}


def parity(ckpt: str, threads: int, tokens: list[int]) -> dict:
    """Largest differences between gpt-tui's analysis and the reference's outputs (float32)."""
    torch = _torch(threads)
    import numpy as np

    from common import text_of

    hf = _hf(ckpt, "fp32", "eager")
    session = _session(ckpt, "fp32")
    out = []
    for n in tokens:
        text = text_of(n)
        a = session.analyse(text)
        with torch.inference_mode():
            ref = hf(torch.tensor([a.ids.tolist()]), output_attentions=True, output_hidden_states=True)
        logits = ref.logits[0].float()
        ours_top = torch.from_numpy(a.top_logits)
        ref_top = logits.gather(1, torch.from_numpy(a.top_ids))
        L = session.config.n_layer
        hidden = max(float(np.abs(a.residual[2 * i] - ref.hidden_states[i][0].numpy()).max()) for i in range(L))
        out.append({
            "tokens": n,
            "last_logits": float((torch.from_numpy(a.last_logits) - logits[-1]).abs().max()),
            "top_logits": float((ours_top - ref_top).abs().max()),
            "logsumexp": float((torch.from_numpy(a.logsumexp) - torch.logsumexp(logits, -1)).abs().max()),
            "attention": float(np.abs(np.asarray(a.attention) - torch.stack(ref.attentions)[:, 0].numpy()).max()),
            "hidden_states": hidden,
            "path": _fast_reason(session.model),
        })
    return {"parity": out}


def main() -> None:
    task, args = sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    if task.startswith("app_"):
        import app_worker

        result = getattr(app_worker, task)(**args)
    else:
        result = globals()[task](**args)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
