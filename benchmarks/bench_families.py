"""Llama- and Qwen-shaped models side by side with transformers: greedy generation and the analysis
pass, on random checkpoints in the shapes of SmolLM2-135M (30 × 576, 9 query / 3 key-value heads)
and Qwen2.5-0.5B (24 × 896, 14 / 2 heads, a 151,936-token vocabulary), by the method of
bench_generate.py and bench_analyse.py: each side in its own process, the sides in turns. As there,
gpt-tui also runs with packing off (GPT_TUI_FAST=0), and the memory bandwidth gives the bound a
batch-1 decoder cannot pass: every weight is read once per token.

    python benchmarks/bench_families.py            # both shapes; generation fp32 and bf16; analysis at 128 tokens
    python benchmarks/bench_families.py --quick    # SmolLM2-135M shape, fp32, one repetition
"""

from __future__ import annotations

import json
import math
import sys

from pathlib import Path

from common import (CACHE, HERE, default_threads, emit, fmt, fmt_ratio, in_turns, paired_ratio, parser, run_checked,
                    stats, table, work)

PROMPT, NEW = 16, 128
IMPLS = (("hf", {}), ("gpt-tui", {}), ("gpt-tui-plain", {"GPT_TUI_FAST": "0"}))


def family_work(task: str, env: dict | None = None, **args) -> dict:
    child = run_checked([sys.executable, str(HERE / "family_worker.py"), task, json.dumps(args)], env)
    result = json.loads([line for line in child.stdout.splitlines() if line.startswith("{")][-1])
    result["rss_mb"] = child.rss_mb
    return result


def checkpoint(shape: str) -> str:
    path = CACHE / f"{shape}-random"
    if not (path / "tokenizer.json").exists():
        print(f"making the {shape} checkpoint in {path} (once)…", file=sys.stderr, flush=True)
        family_work("make_checkpoint", shape=shape, path=str(path))
    return str(path)


def bytes_per_token(ckpt: str, dtype: str, prompt: int = PROMPT) -> float:
    """Bytes a batch-1 decoding step reads: every weight once (a tied W_E once, as the unembedding)
    and, on average over the steps, the KV cache."""
    config = json.loads((Path(ckpt) / "config.json").read_text())
    header = Path(ckpt) / "model.safetensors"
    with open(header, "rb") as f:
        meta = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    params = sum(math.prod(t["shape"]) for k, t in meta.items() if k != "__metadata__")
    heads, kv = config["num_attention_heads"], config.get("num_key_value_heads") or config["num_attention_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    cache = 2 * config["num_hidden_layers"] * kv * head_dim * (prompt + NEW / 2)
    return (params + cache) * (4 if dtype == "fp32" else 2)


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--shapes", default=None, help="comma-separated: smollm2-135m,qwen2.5-0.5b")
    p.add_argument("--dtypes", default=None, help="generation dtypes (default fp32,bf16)")
    p.add_argument("--tokens", type=int, default=128, help="text length of the analysis pass")
    p.add_argument("--new", type=int, default=NEW, help="tokens generated per run")
    args = p.parse_args()
    reps = args.reps or (1 if args.quick else 2)
    rounds = args.rounds or (1 if args.quick else 3)
    threads = args.threads or default_threads()
    shapes = (args.shapes or ("smollm2-135m" if args.quick else "smollm2-135m,qwen2.5-0.5b")).split(",")
    dtypes = (args.dtypes or ("fp32" if args.quick else "fp32,bf16")).split(",")

    bw = work("bandwidth", threads=threads, mb=256 if args.quick else 1024, reps=5 if args.quick else 20)
    read = stats(bw["read_gb_s"])
    results, gen_rows, ana_rows = [], [], []
    for shape in shapes:
        ckpt = checkpoint(shape)
        for dtype in dtypes:
            runs = in_turns({impl: (lambda impl=impl, env=env: family_work(
                "generate", env=env, impl=impl.removesuffix("-plain"), ckpt=ckpt, dtype=dtype, threads=threads,
                reps=reps, prompt=PROMPT, new_tokens=args.new)) for impl, env in IMPLS}, rounds)
            tok_s = {impl: [r["tok_s"] for r in runs[impl]] for impl in runs}
            hf, ours, plain = (stats(sum(tok_s[impl], [])) for impl, _ in IMPLS)
            speedup = paired_ratio(tok_s["gpt-tui"], tok_s["hf"])
            same = sum(a == b for a, b in zip(runs["hf"][0]["tokens"], runs["gpt-tui"][0]["tokens"]))
            rss = {impl: max(r["rss_mb"] for r in runs[impl]) for impl in runs}
            bound = read["median"] * 1e9 / bytes_per_token(ckpt, dtype)
            results.append({"kind": "generate", "shape": shape, "dtype": dtype, "hf_tok_s": hf, "gpt_tui_tok_s": ours,
                            "gpt_tui_plain_tok_s": plain, "speedup": speedup["median"], "speedup_rounds": speedup,
                            "bound_tok_s": bound, "fraction_of_bound": ours["median"] / bound,
                            "same_greedy_tokens": same, "rss_mb": rss, "path": runs["gpt-tui"][0]["path"]})
            gen_rows.append([f"{shape} {dtype}", fmt(hf), fmt(ours), fmt_ratio(speedup), fmt(plain),
                             f"{bound:.0f} ({100 * ours['median'] / bound:.0f}%, transformers "
                             f"{100 * hf['median'] / bound:.0f}%)", f"{same}/{args.new}",
                             f"{rss['hf']:.0f} / {rss['gpt-tui']:.0f}"])
        impls = ("hf", "gpt-tui-analyse", "gpt-tui-append")
        runs = in_turns({impl: (lambda impl=impl: family_work(
            "analyse", impl=impl, ckpt=ckpt, dtype="fp32", threads=threads, reps=reps, tokens=args.tokens))
            for impl in impls}, rounds)
        per_round = {impl: [[1e3 * t for t in r["times"]] for r in runs[impl]] for impl in impls}
        ms = {impl: stats(sum(per_round[impl], [])) for impl in impls}
        speedup = {impl: paired_ratio(per_round["hf"], per_round[impl]) for impl in impls[1:]}
        rss = {impl: max(r["rss_mb"] for r in runs[impl]) for impl in impls}
        results.append({"kind": "analyse", "shape": shape, "tokens": args.tokens, "ms": ms,
                        "speedup": {i: s["median"] for i, s in speedup.items()}, "rss_mb": rss})
        ana_rows.append([f"{shape} {args.tokens}", fmt(ms["hf"]),
                         *(f"{fmt(ms[i])} · {fmt_ratio(speedup[i])}" for i in impls[1:]),
                         " / ".join(f"{rss[i]:.0f}" for i in impls)])

    md = (f"Greedy generation, {args.new} new tokens after a {PROMPT}-token prompt, KV cache, batch 1, {threads} threads "
          f"on both sides; tokens/s, median of {reps * rounds} (min–max) from {rounds} round(s) in turns:\n\n"
          + table(["shape dtype", "transformers", "gpt-tui", "ratio", "gpt-tui, packing off",
                   "bandwidth bound (share reached)", "same greedy tokens", "peak RSS MiB hf / gpt-tui"], gen_rows)
          + f"\n\nMemory bandwidth ({threads} threads, torch): read (sum) {fmt(read)} GB/s; the bound is that rate ÷ "
            "the bytes a step reads (every weight once, the mean KV cache)."
          + f"\n\nAnalysis pass (fp32): transformers' full output (eager, every attention weight and hidden state) "
            f"against what gpt-tui's panels need; milliseconds, median (min–max) · speed-up:\n\n"
          + table(["shape tokens", "transformers, full output", "gpt-tui, what the panels need",
                   "gpt-tui, one token typed", "peak RSS MiB (same order)"], ana_rows) + "\n")
    emit("families", args, md, results, {"threads": threads, "reps": reps, "rounds": rounds,
                                         "bandwidth": {"read": read, "threads": threads}})


if __name__ == "__main__":
    main()
