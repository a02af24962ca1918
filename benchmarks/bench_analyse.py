"""The analysis pass the panels need, side by side: logits at every position, every attention
weight and the per-layer residuals, for texts of 64 to 1024 tokens.

Reference: transformers' GPT2LMHeadModel (eager attention) with output_attentions=True and
output_hidden_states=True. gpt-tui: the model's forward pass with a Trace (the like-for-like
comparison), Session.analyse from scratch (what the panels get: top-k per position, token
log-probabilities, numpy arrays), and Session.analyse after the user typed one more token (the
KV cache of the previous text is reused). Same checkpoint, threads and dtype (float32); each side
in its own process; a parity check reports the largest differences from the reference.

    python benchmarks/bench_analyse.py            # small and medium; 64, 128, 256, 512, 1024 tokens
    python benchmarks/bench_analyse.py --quick    # small; 64 and 128 tokens; one repetition
"""

from __future__ import annotations

from common import checkpoint, default_threads, emit, fmt, parser, ratio, stats, table, work

IMPLS = (
    ("hf", "transformers, full output"),
    ("gpt-tui-forward", "gpt-tui forward + Trace"),
    ("gpt-tui-analyse", "gpt-tui Session.analyse"),
    ("gpt-tui-append", "gpt-tui Session.analyse, one token typed"),
)


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--shapes", default=None, help="comma-separated: small,medium")
    p.add_argument("--tokens", default=None, help="comma-separated text lengths")
    p.add_argument("--dtype", default="fp32")
    args = p.parse_args()
    reps = args.reps or (1 if args.quick else 5)
    threads = args.threads or default_threads()
    shapes = (args.shapes or ("small" if args.quick else "small,medium")).split(",")
    lengths = [int(n) for n in (args.tokens or ("64,128" if args.quick else "64,128,256,512,1024")).split(",")]

    results, rows, parity_rows = [], [], []
    for shape in shapes:
        ckpt = str(checkpoint(shape))
        for n in lengths:
            sides = {impl: work("analyse", impl=impl, ckpt=ckpt, dtype=args.dtype, threads=threads, reps=reps,
                                tokens=n) for impl, _ in IMPLS}
            ms = {impl: stats([1e3 * t for t in sides[impl]["times"]]) for impl, _ in IMPLS}
            hf = ms["hf"]["median"]
            results.append({"shape": shape, "tokens": n, "dtype": args.dtype, "ms": ms,
                            "speedup": {impl: hf / ms[impl]["median"] for impl, _ in IMPLS[1:]},
                            "rss_mb": {impl: sides[impl]["rss_mb"] for impl, _ in IMPLS},
                            "path": sides["gpt-tui-analyse"]["path"]})
            rows.append([f"{shape} {n}", fmt(ms["hf"]),
                         *(f"{fmt(ms[i])} · {ratio(hf, ms[i]['median'])}" for i, _ in IMPLS[1:]),
                         " / ".join(f"{sides[i]['rss_mb']:.0f}" for i, _ in IMPLS)])
        check = work("parity", ckpt=ckpt, threads=threads, tokens=lengths[:1] if args.quick else [64, 256])
        for c in check["parity"]:
            parity_rows.append([f"{shape} {c['tokens']}", f"{c['last_logits']:.1e}", f"{c['top_logits']:.1e}",
                                f"{c['logsumexp']:.1e}", f"{c['attention']:.1e}", f"{c['hidden_states']:.1e}"])
            results.append({"shape": shape, "parity": c})

    md = (f"Analysis pass ({args.dtype}, batch 1, {threads} threads on both sides): milliseconds, median of {reps} "
          f"(min–max) · speed-up over transformers.\n\n"
          + table(["shape tokens", *(label for _, label in IMPLS), "peak RSS MiB (same order)"], rows)
          + "\n\nLargest absolute difference from transformers (float32), gpt-tui Session.analyse:\n\n"
          + table(["shape tokens", "next-token logits", "top-50 logits, every position", "logsumexp",
                   "attention weights", "hidden states"], parity_rows) + "\n")
    emit("analyse", args, md, results, {"threads": threads, "reps": reps})


if __name__ == "__main__":
    main()
