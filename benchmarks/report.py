"""Write benchmarks/RESULTS.md from the JSON the benchmark scripts left in benchmarks/results/.

    python benchmarks/report.py [--quick] [--command "benchmarks/run_all.sh"]
"""

from __future__ import annotations

import argparse
import json

from common import HERE, RESULTS, table

ORDER = ("generate", "analyse", "tokenize", "app", "families")
TITLES = {"generate": "Generation", "analyse": "Analysis pass", "tokenize": "`gpt-tui tokenize`",
          "app": "Interactive session", "families": "Llama- and Qwen-shaped models"}
SMALL_FP32_WEIGHTS_MB = 124_439_808 * 4 / 2**20  # GPT-2 small, tied: parameters × 4 bytes


def _load(quick: bool) -> dict[str, dict]:
    out = {}
    for name in ORDER:
        path = RESULTS / f"{name}{'.quick' if quick else ''}.json"
        if path.exists():
            out[name] = json.loads(path.read_text())
    return out


def _rounds(r: dict, key: str | None = None) -> str:
    """' (rounds 1.75–1.95)': the spread of a paired ratio over the rounds, where there were several."""
    spread = r.get("speedup_rounds")
    spread = spread and (spread[key] if key else spread)
    return f" (rounds {spread['min']:.2f}–{spread['max']:.2f})" if spread and spread["n"] > 1 else ""


def _small_short_prompt(gen: list[dict], dtype: str) -> dict | None:
    """The small shape's generation after the 16-token prompt (the case the targets speak of)."""
    return next((x for x in gen if x["shape"] == "small" and x["dtype"] == dtype and x.get("prompt", 16) == 16), None)


def _verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("yes" if ok else "**no**")


def targets(data: dict[str, dict]) -> list[list[str]]:
    """Each target of issue 5 against the figures, where the figures exist."""
    rows = []
    gen = data.get("generate", {}).get("results", [])
    for dtype in ("fp32", "bf16"):
        r = _small_short_prompt(gen, dtype)
        if r:
            rows.append([f"generation ≥ 2× transformers, small, {dtype}", f"{r['speedup']:.2f}×{_rounds(r)} "
                         f"({r['gpt_tui_tok_s']['median']:.0f} vs {r['hf_tok_s']['median']:.0f} tok/s; "
                         f"{100 * r['fraction_of_bound']:.0f}% of the bandwidth bound)", _verdict(r["speedup"] >= 2)])
    r = _small_short_prompt(gen, "fp32")
    if r:
        rss = r["rss_mb"]["gpt-tui"]
        limit = SMALL_FP32_WEIGHTS_MB + 400
        rows.append(["peak RSS ≤ fp32 weights + 400 MB (small, generation)",
                     f"{rss:.0f} MiB (limit {limit:.0f}; transformers {r['rss_mb']['hf']:.0f})", _verdict(rss <= limit)])
    ana = [x for x in data.get("analyse", {}).get("results", []) if "tokens" in x]
    for n in (128, 512):
        r = next((x for x in ana if x["shape"] == "small" and x["tokens"] == n), None)
        if r:
            f, s = r["speedup"]["gpt-tui-forward"], r["speedup"]["gpt-tui-analyse"]
            a = r["speedup"]["gpt-tui-append"]
            rows.append([f"analysis ≥ 2.5× transformers' full output, small, {n} tokens",
                         f"what the panels need {s:.2f}×{_rounds(r, 'gpt-tui-analyse')} (one token typed {a:.2f}×); "
                         f"every weight kept {f:.2f}×",
                         _verdict(s >= 2.5)])
    parity = [x["parity"] for x in data.get("analyse", {}).get("results", []) if "parity" in x]
    if parity:
        worst = max(max(p[k] for k in ("last_logits", "top_logits", "logsumexp", "attention", "hidden_states"))
                    for p in parity)
        rows.append(["analysis equal to transformers (float32, ≤ 1e-4)", f"largest difference {worst:.1e}",
                     _verdict(worst <= 1e-4)])
    tok = {x["case"]: x for x in data.get("tokenize", {}).get("results", [])}
    if "ids" in tok:
        rows.append(["`gpt-tui tokenize` ≤ 1.5× a minimal script", f"--ids {tok['ids']['ratio_to_minimal']:.2f}×, "
                     f"table {tok['table']['ratio_to_minimal']:.2f}×",
                     _verdict(max(tok[c]["ratio_to_minimal"] for c in ("ids", "table")) <= 1.5)])
    app = data.get("app", {}).get("results", [])
    start = next((x for x in app if x["case"] == "startup"), None)
    if start and start["first_frame_s"]:
        first = sorted(start["first_frame_s"])[len(start["first_frame_s"]) // 2]
        bare = start.get("bare_textual_first_frame_s")
        ref = f" (a bare Textual app: {sorted(bare)[len(bare) // 2]:.2f} s)" if bare else ""
        rows.append(["first frame ≤ 0.5 s after launch", f"{first:.2f} s{ref}", _verdict(first <= 0.5)])
    if start and start["model_ready_s"]:
        ready = sorted(start["model_ready_s"])[len(start["model_ready_s"]) // 2]
        torch_s = start.get("import_torch_s")
        ref = f" (`import torch` alone: {sorted(torch_s)[len(torch_s) // 2]:.2f} s)" if torch_s else ""
        rows.append(["bundled model ready ≤ 2 s", f"{ready:.2f} s{ref}", _verdict(ready <= 2)])
    keys = [x for x in app if x["case"] == "keystroke"]
    if keys:
        best = min(keys, key=lambda x: x["latency_ms"]["median"])
        rows.append(["keystroke → all panels ≤ 150 ms (64 tokens, small)",
                     f"{best['latency_ms']['median']:.0f} ms ({best['threads']} thread(s))",
                     _verdict(best["latency_ms"]["median"] <= 150)])
    dec = [x for x in app if x["case"] == "decode_while_painting"]
    if dec:
        best = min(dec, key=lambda x: x["threads"])  # the interactive setting
        rows.append(["decoding keeps ≥ 80% of its speed while painting",
                     f"{100 * best['kept']:.0f}% with {best['threads']} thread(s)"
                     + "".join(f", {100 * x['kept']:.0f}% with {x['threads']}" for x in dec if x is not best),
                     _verdict(best["kept"] >= 0.8)])
    return rows


def machine_line(m: dict) -> str:
    parts = [f"{m.get('cpu', '?')} ({m.get('cores_usable', '?')} usable cores, {m.get('simd', '')})",
             f"{m.get('memory_gb', '?')} GB RAM", f"Python {m.get('python')}", f"torch {m.get('torch')}",
             f"transformers {m.get('transformers')}", f"textual {m.get('textual')}", f"tiktoken {m.get('tiktoken')}"]
    return ", ".join(parts) + f"; {m.get('platform', '')}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--command", default="benchmarks/run_all.sh")
    args = p.parse_args()
    data = _load(args.quick)
    if not data:
        raise SystemExit(f"no results in {RESULTS}; run benchmarks/run_all.sh first")
    first = data[next(iter(data))]
    lines = [
        "# Benchmarks: gpt-tui side by side with the reference",
        "",
        f"Produced by `{args.command}` (one benchmark process at a time); the latest run finished "
        f"{max(d['time'] for d in data.values())}. Each script's own finishing time: "
        + ", ".join(f"{name} {d['time'].split(' ', 1)[1]}" for name, d in data.items()) + ".",
        "",
        f"Machine: {machine_line(first['machine'])}.",
        "",
        "Load average when each script started (busy machines give noisy figures): "
        + ", ".join(f"{name} {d['machine'].get('load_average')}" for name, d in data.items()) + ".",
        "",
        "Every measured side runs in its own process on the same random GPT-2-shaped checkpoint "
        "(small: 12 × 768, medium: 24 × 1024; speed does not depend on the weight values), with the "
        "same torch threads and dtype. Figures are medians with (min–max). Each script can be run on "
        "its own; its exact command is given under its table.",
        "",
    ]
    if args.quick:
        lines[0:0] = ["> **Quick run** (few repetitions, small cases only): checks that the scripts work; not figures to quote.", ""]
    rows = targets(data)
    if rows:
        lines += ["## Targets", "", table(["target", "measured", "met"], rows), ""]
    for name in ORDER:
        if name in data:
            d = data[name]
            lines += [f"## {TITLES[name]}", "", d["markdown"].rstrip(), "", f"Command: `{d['command']}`", ""]
    out = HERE / ("RESULTS.quick.md" if args.quick else "RESULTS.md")
    out.write_text("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
