"""The analysis pass the panels need, side by side with the reference's full output, for texts
of 64 to 1024 tokens.

Reference: transformers' GPT2LMHeadModel (eager attention) with output_attentions=True and
output_hidden_states=True: logits at every position, every attention weight, every hidden state.
gpt-tui, three ways:
- the model's forward pass with a Trace that keeps every weight (like for like with the reference);
- Session.analyse from scratch plus the attention layer on screen: what the panels need after a
  text is pasted. The pass keeps the last position's distribution, each layer's queries and keys,
  the residual stream and the final-layer-normed residuals; weights of other layers and the
  predictions after other positions are derived when looked at (one layer: one small product);
- the same after the user typed one more token (the previous text's KV cache is reused).
Same checkpoint, threads and dtype (float32); each side in its own process, the sides in turns; a
parity check reports the largest differences from the reference of everything the panels can show.

    python benchmarks/bench_analyse.py            # small and medium; 64, 128, 256, 512, 1024 tokens
    python benchmarks/bench_analyse.py --quick    # small; 64 and 128 tokens; one repetition
"""

from __future__ import annotations

from common import (checkpoint, default_threads, emit, fmt, fmt_ratio, in_turns, paired_ratio, parser, stats,
                    table, work)

IMPLS = (
    ("hf", "transformers, full output"),
    ("gpt-tui-forward", "gpt-tui forward keeping every weight"),
    ("gpt-tui-analyse", "gpt-tui, what the panels need"),
    ("gpt-tui-append", "gpt-tui, what the panels need, one token typed"),
)


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--shapes", default=None, help="comma-separated: small,medium")
    p.add_argument("--tokens", default=None, help="comma-separated text lengths")
    p.add_argument("--dtype", default="fp32")
    args = p.parse_args()
    reps = args.reps or (1 if args.quick else 2)
    rounds = args.rounds or (1 if args.quick else 3)
    threads = args.threads or default_threads()
    shapes = (args.shapes or ("small" if args.quick else "small,medium")).split(",")
    lengths = [int(n) for n in (args.tokens or ("64,128" if args.quick else "64,128,256,512,1024")).split(",")]

    results, rows, parity_rows = [], [], []
    for shape in shapes:
        ckpt = str(checkpoint(shape))
        for n in lengths:
            runs = in_turns({impl: (lambda impl=impl: work(
                "analyse", impl=impl, ckpt=ckpt, dtype=args.dtype, threads=threads, reps=reps, tokens=n))
                for impl, _ in IMPLS}, rounds)
            per_round = {impl: [[1e3 * t for t in r["times"]] for r in runs[impl]] for impl, _ in IMPLS}
            ms = {impl: stats(sum(per_round[impl], [])) for impl, _ in IMPLS}
            speedup = {impl: paired_ratio(per_round["hf"], per_round[impl]) for impl, _ in IMPLS[1:]}
            rss = {impl: max(r["rss_mb"] for r in runs[impl]) for impl, _ in IMPLS}
            results.append({"shape": shape, "tokens": n, "dtype": args.dtype, "ms": ms,
                            "speedup": {impl: s["median"] for impl, s in speedup.items()},
                            "speedup_rounds": speedup, "rss_mb": rss,
                            "path": runs["gpt-tui-analyse"][0]["path"]})
            rows.append([f"{shape} {n}", fmt(ms["hf"]),
                         *(f"{fmt(ms[i])} · {fmt_ratio(speedup[i])}" for i, _ in IMPLS[1:]),
                         " / ".join(f"{rss[i]:.0f}" for i, _ in IMPLS)])
        check = work("parity", ckpt=ckpt, threads=threads, tokens=lengths[:1] if args.quick else [64, 256])
        for c in check["parity"]:
            parity_rows.append([f"{shape} {c['tokens']}", f"{c['last_logits']:.1e}", f"{c['top_logits']:.1e}",
                                f"{c['logsumexp']:.1e}", f"{c['attention']:.1e}", f"{c['hidden_states']:.1e}"])
            results.append({"shape": shape, "parity": c})

    md = (f"Analysis pass ({args.dtype}, batch 1, {threads} threads on both sides): milliseconds, median of "
          f"{reps * rounds} (min–max), from {rounds} round(s) in which each side runs {reps} time(s) in turn · "
          f"speed-up over transformers: the median of the rounds' ratios (min–max).\n\n"
          + table(["shape tokens", *(label for _, label in IMPLS), "peak RSS MiB (same order)"], rows)
          + "\n\nLargest absolute difference from transformers (float32) of what gpt-tui's panels can show "
            "(predictions at every position and every layer's weights, derived on demand):\n\n"
          + table(["shape tokens", "next-token logits", "top-50 logits, every position", "logsumexp",
                   "attention weights", "hidden states"], parity_rows) + "\n")
    emit("analyse", args, md, results, {"threads": threads, "reps": reps, "rounds": rounds})


if __name__ == "__main__":
    main()
