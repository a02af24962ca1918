"""Greedy generation, side by side: 128 new tokens after a 16-token prompt, KV cache, tokens/s.

gpt-tui's Session.generate (temperature 0) against transformers' GPT2LMHeadModel.generate
(sdpa attention), on the same random GPT-2-shaped checkpoint, same threads, same dtype, each side
in its own process, the sides in turns (common.in_turns). Also: gpt-tui with packing turned off
(GPT_TUI_FAST=0, the plain PyTorch path), the machine's memory bandwidth, and the bandwidth bound
for batch-1 decoding: every weight is read once per token, so tokens/s can never exceed bandwidth
÷ bytes read per token.

    python benchmarks/bench_generate.py            # small and medium, fp32 and bf16
    python benchmarks/bench_generate.py --quick    # small, one repetition: checks it runs
"""

from __future__ import annotations

from common import (SHAPES, checkpoint, default_threads, emit, fmt, fmt_ratio, in_turns, paired_ratio, parser, stats,
                    table, work)

PROMPT, NEW = 16, 128
LONG_PROMPT = 880  # also, for the small shape: a long context (880 + 128 fills the 1024-token window)
IMPLS = (("hf", "transformers", {}), ("gpt-tui", "gpt-tui", {}), ("gpt-tui-plain", "gpt-tui, packing off",
                                                                    {"GPT_TUI_FAST": "0"}))


def bytes_per_token(shape: str, dtype: str, prompt: int = PROMPT) -> float:
    """Bytes a batch-1 decoding step must read: every weight (W_E once, as the unembedding) and,
    on average over the 128 steps, the KV cache."""
    cfg = SHAPES[shape]
    L, C, V = cfg["n_layer"], cfg["n_embd"], 50257
    per_layer = 12 * C * C + 13 * C  # c_attn, c_proj, c_fc, c_proj weights + biases + 2 layer norms
    weights = L * per_layer + V * C + 2 * C  # + unembedding (tied W_E) + final layer norm
    size = 4 if dtype == "fp32" else 2
    mean_context = prompt + NEW / 2
    kv = 2 * L * mean_context * C
    return (weights + kv) * size


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--shapes", default=None, help="comma-separated: small,medium")
    p.add_argument("--dtypes", default="fp32,bf16")
    args = p.parse_args()
    reps = args.reps or (1 if args.quick else 2)
    rounds = args.rounds or (1 if args.quick else 3)
    threads = args.threads or default_threads()
    shapes = (args.shapes or ("small" if args.quick else "small,medium")).split(",")
    dtypes = args.dtypes.split(",")

    bw = work("bandwidth", threads=threads, mb=256 if args.quick else 1024, reps=5 if args.quick else 20)
    read, copy = stats(bw["read_gb_s"]), stats(bw["copy_gb_s"])
    bound_bw = read["median"]  # decoding reads the weights: the copy figure (reads + writes) is not its rate

    results, rows = [], []
    for shape in shapes:
        ckpt = str(checkpoint(shape))
        long_cases = [(d, LONG_PROMPT) for d in dtypes] if shape == "small" and not args.quick else []
        for dtype, prompt in [(d, PROMPT) for d in dtypes] + long_cases:
            runs = in_turns({impl: (lambda impl=impl, env=env: work(
                "generate", env=env, impl=impl, ckpt=ckpt, dtype=dtype, threads=threads, reps=reps,
                prompt=prompt, new_tokens=NEW)) for impl, _label, env in IMPLS}, rounds)
            tok_s = {impl: [r["tok_s"] for r in runs[impl]] for impl, _, _ in IMPLS}
            hf, ours, plain = (stats(sum(tok_s[i], [])) for i, _, _ in IMPLS)
            speedup = paired_ratio(tok_s["gpt-tui"], tok_s["hf"])
            need = bytes_per_token(shape, dtype, prompt)
            bound = bound_bw * 1e9 / need
            first = {impl: runs[impl][0] for impl, _, _ in IMPLS}
            same = sum(a == b for a, b in zip(first["hf"]["tokens"], first["gpt-tui"]["tokens"]))
            rss = {impl: max(r["rss_mb"] for r in runs[impl]) for impl, _, _ in IMPLS}
            results.append({"shape": shape, "dtype": dtype, "prompt": prompt, "hf_tok_s": hf, "gpt_tui_tok_s": ours,
                            "gpt_tui_plain_tok_s": plain, "speedup": speedup["median"], "speedup_rounds": speedup,
                            "bound_tok_s": bound, "fraction_of_bound": ours["median"] / bound,
                            "bytes_per_token": need, "same_greedy_tokens": same, "rss_mb": rss,
                            "load_s": {i: first[i]["load_s"] for i, _, _ in IMPLS},
                            "path": first["gpt-tui"]["path"]})
            long = prompt != PROMPT  # its time includes reading the prompt: no decoding bound to compare with
            rows.append([f"{shape} {dtype}" + (f", {prompt}-token prompt" if long else ""), fmt(hf), fmt(ours),
                         fmt_ratio(speedup), fmt(plain),
                         "–" if long else f"{bound:.0f} ({100 * ours['median'] / bound:.0f}%)", f"{same}/{NEW}",
                         f"{rss['hf']:.0f} / {rss['gpt-tui']:.0f}"])

    also = "" if args.quick else f" (the small shape also after an {LONG_PROMPT}-token prompt, its time included)"
    md = (f"Greedy generation, {NEW} new tokens after a {PROMPT}-token prompt, KV cache, batch 1; {threads} threads "
          f"on both sides{also}; "
          f"tokens/s, median of {reps * rounds} (min–max): {rounds} round(s) in which each side "
          f"runs {reps} time(s) in turn; the ratio is the median of the rounds' ratios (min–max).\n\n"
          + table(["shape dtype", "transformers", "gpt-tui", "ratio", "gpt-tui, packing off",
                   "bandwidth bound (gpt-tui's share)", "same greedy tokens", "peak RSS MiB hf / gpt-tui"], rows)
          + f"\n\nMemory bandwidth ({threads} threads, torch): read (sum) {fmt(read)} GB/s, copy (read+write) "
            f"{fmt(copy)} GB/s; the bound uses {bound_bw:.1f} GB/s ÷ bytes read per token (all weights, W_E once "
            f"as the unembedding, and the mean KV cache).\n")
    emit("generate", args, md, results, {"bandwidth": {"read": read, "copy": copy, "threads": threads},
                                         "threads": threads, "reps": reps, "rounds": rounds})


if __name__ == "__main__":
    main()
