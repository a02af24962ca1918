"""`gpt-tui tokenize`, start to exit, against the least a program can do for the same output.

Each command is a fresh process (wall time from fork to exit, and its peak RSS), run in turn so
that drifts in the machine's load hit them alike:
- `python -c "import tiktoken"`: the floor of any Python program using tiktoken;
- benchmarks/minimal_tokenize.py: import tiktoken, build the gpt2 encoding from the same
  bundled model's BPE files (ranks read from vocab.json, as gpt-tui does), encode, print ids;
- the same with tiktoken's own data-gym loader (which replays the BPE merges);
- `gpt-tui tokenize --ids` (the same output) and `gpt-tui tokenize` (the table).

    python benchmarks/bench_tokenize.py
    python benchmarks/bench_tokenize.py --quick
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from common import HERE, emit, fmt, parser, ratio, run, stats, table

TEXT = ("The quick brown fox jumps over the lazy dog, and then it runs into the forest where nobody "
        "can find it. Tokenizers cut text into pieces that a model has seen many times before.")


def gpt_tui() -> list[str]:
    exe = Path(sys.executable).with_name("gpt-tui")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("gpt-tui")
    return [found] if found else [sys.executable, "-m", "gpt_tui"]


def main() -> None:
    args = parser(__doc__.split("\n")[0]).parse_args()
    reps = args.reps or (2 if args.quick else 15)
    py = sys.executable
    minimal = str(HERE / "minimal_tokenize.py")
    cases = [
        ("import", 'python -c "import tiktoken"', [py, "-c", "import tiktoken"]),
        ("minimal", "minimal script (encoder.json ranks)", [py, minimal, TEXT]),
        ("minimal-data-gym", "minimal script (tiktoken's data-gym loader)", [py, minimal, "--data-gym", TEXT]),
        ("ids", "gpt-tui tokenize --ids", [*gpt_tui(), "tokenize", "--ids", TEXT]),
        ("table", "gpt-tui tokenize (table)", [*gpt_tui(), "tokenize", TEXT]),
    ]
    outputs = {}
    for key, _, cmd in cases:  # warm the page cache and check the commands agree
        child = run(cmd)
        if child.returncode != 0:
            raise SystemExit(f"{key} failed: {child.stderr[-2000:]}")
        outputs[key] = child.stdout.strip()
    if not (outputs["minimal"] == outputs["minimal-data-gym"] == outputs["ids"]):
        raise SystemExit("the minimal scripts and gpt-tui disagree on the ids")
    walls = {key: [] for key, _, _ in cases}
    rss = {key: [] for key, _, _ in cases}
    for _ in range(reps):
        for key, _, cmd in cases:
            child = run(cmd)
            walls[key].append(1e3 * child.wall_s)
            rss[key].append(child.rss_mb)
    ms = {key: stats(v) for key, v in walls.items()}
    base = ms["minimal"]["median"]
    rows = [[label, fmt(ms[key], 0), ratio(ms[key]["median"], base), f"{max(rss[key]):.0f}"]
            for key, label, _ in cases]
    md = (f"Tokenizing {len(outputs['ids'].split())} tokens, one fresh process per run: wall milliseconds, "
          f"median of {reps} (min–max), and the ratio to the minimal script doing the same work.\n\n"
          + table(["command", "wall ms", "÷ minimal", "peak RSS MiB"], rows) + "\n")
    results = [{"case": key, "label": label, "ms": ms[key], "ratio_to_minimal": ms[key]["median"] / base,
                "rss_mb": max(rss[key])} for key, label, _ in cases]
    emit("tokenize", args, md, results, {"reps": reps})


if __name__ == "__main__":
    main()
