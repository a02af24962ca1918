"""Shared by the benchmark scripts: checkpoints, measured subprocesses, statistics, tables.

Every measured side runs in its own subprocess (benchmarks/worker.py) so that its peak resident
memory (ru_maxrss, read with os.wait4 for exactly that child) is its own, and so that the
reference and gpt-tui never share caches, thread pools or allocators.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = Path(os.environ.get("GPT_TUI_BENCH_CACHE", HERE / ".cache"))
RESULTS = HERE / "results"

# GPT-2 small and medium: speed depends on the shapes, not on the weight values.
SHAPES = {
    "small": dict(n_layer=12, n_embd=768, n_head=12),
    "medium": dict(n_layer=24, n_embd=1024, n_head=16),
}

# Words that are one GPT-2 token each (with their leading space), so a text of N tokens is easy to make.
WORDS = (" the", " cat", " sat", " on", " a", " mat", " and", " looked", " at", " dog", ".", " It", " was",
         " very", " happy", " to", " see", " him")


def text_of(n_tokens: int) -> str:
    """A text that the gpt2 encoding cuts into exactly n_tokens tokens."""
    return "".join(WORDS[i % len(WORDS)] for i in range(n_tokens)).lstrip(" ") if n_tokens else ""


def prompt_ids(n: int, seed: int = 1234, vocab: int = 50257) -> list[int]:
    """n pseudo-random token ids (the same on every run)."""
    import random

    rng = random.Random(seed)
    return [rng.randrange(256, vocab - 1) for _ in range(n)]


def checkpoint(shape: str) -> Path:
    """A random GPT-2-shaped Hugging Face checkpoint (config.json + model.safetensors), made once."""
    path = CACHE / f"gpt2-{shape}-random"
    if (path / "model.safetensors").exists() and (path / "config.json").exists():
        return path
    print(f"making the {shape} checkpoint in {path} (once)…", file=sys.stderr, flush=True)
    run_checked([sys.executable, str(HERE / "worker.py"), "make_checkpoint",
                 json.dumps({"shape": shape, "path": str(path)})])
    return path


# -- subprocesses -----------------------------------------------------------------------------------------


@dataclass
class Child:
    wall_s: float  # from fork to exit
    rss_mb: float  # the child's own peak resident set
    stdout: str
    stderr: str
    returncode: int


def run(cmd: list[str], env: dict | None = None, timeout: float = 1800) -> Child:
    """Run cmd, return its wall time, exit status, output and its own peak RSS (os.wait4)."""
    import threading

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                env={**os.environ, **(env or {})})
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)  # blocks; rusage of exactly this child
        finally:
            killer.cancel()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Child(wall, usage.ru_maxrss / 1024, out.read().decode(errors="replace"),
                     err.read().decode(errors="replace"), proc.returncode)


def run_checked(cmd: list[str], env: dict | None = None) -> Child:
    child = run(cmd, env)
    if child.returncode != 0:
        sys.stderr.write(child.stderr[-4000:])
        raise SystemExit(f"failed ({child.returncode}): {shlex.join(cmd)}")
    return child


def work(task: str, env: dict | None = None, **args) -> dict:
    """Run one task of worker.py in a fresh process; its JSON result plus the child's peak RSS."""
    child = run_checked([sys.executable, str(HERE / "worker.py"), task, json.dumps(args)], env)
    lines = [line for line in child.stdout.splitlines() if line.startswith("{")]
    result = json.loads(lines[-1])
    result["rss_mb"] = child.rss_mb
    result["process_s"] = child.wall_s
    return result


# -- statistics and output ---------------------------------------------------------------------------------


def stats(values: list[float]) -> dict:
    """Median with min and max."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def in_turns(sides: dict[str, Callable[[], dict]], rounds: int) -> dict[str, list[dict]]:
    """Run every side once per round, in turn (A B C, A B C, …); each side's results, by round.

    The speed of a shared machine drifts from one minute to the next (this VM's memory bandwidth
    has measured 30–58 GB/s for the same sum on the same day). Measured one side after the other,
    the drift lands in the ratio; in turns, every side sees every phase, and each round gives a
    ratio of runs made seconds apart (`paired_ratio`).
    """
    out: dict[str, list[dict]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, side in sides.items():
            out[name].append(side())
    return out


def paired_ratio(numerator: list[list[float]], denominator: list[list[float]]) -> dict:
    """stats() of each round's ratio of medians; arguments are per-round lists of measurements."""
    return stats([statistics.median(a) / statistics.median(b) for a, b in zip(numerator, denominator)])


def fmt_ratio(s: dict) -> str:
    """'1.85× (1.62–1.97)' from paired_ratio(); just '1.85×' for one round."""
    if s["n"] == 1:
        return f"{s['median']:.2f}×"
    return f"{s['median']:.2f}× ({s['min']:.2f}–{s['max']:.2f})"


def fmt(s: dict, digits: int = 1, unit: str = "") -> str:
    """'12.3 (11.9–12.8)' from stats()."""
    f = f"{{:.{digits}f}}"
    return f"{f.format(s['median'])}{unit} ({f.format(s['min'])}–{f.format(s['max'])})"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "–"


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (also readable as plain text)."""
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def machine() -> dict:
    """Where the figures came from: CPU model, cores, memory, versions."""
    info = {"python": platform.python_version(), "platform": platform.platform()}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        models = [line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")]
        flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
        info["cpu"] = models[0] if models else platform.processor()
        info["logical_cpus"] = len(models)
        info["simd"] = " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags)
    except OSError:
        info["cpu"] = platform.processor()
    try:
        info["cores_usable"] = len(os.sched_getaffinity(0))
    except AttributeError:
        info["cores_usable"] = os.cpu_count()
    try:
        mem = Path("/proc/meminfo").read_text().split("\n")[0].split()
        info["memory_gb"] = round(int(mem[1]) / 1024 / 1024, 1)
    except (OSError, IndexError, ValueError):
        pass
    try:
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    versions = subprocess.run([sys.executable, "-c", "import torch, transformers, textual, tiktoken; "
                               "print(torch.__version__, transformers.__version__, textual.__version__, "
                               "tiktoken.__version__, torch.get_num_threads())"],
                              capture_output=True, text=True)
    if versions.returncode == 0:
        parts = versions.stdout.split()
        info.update(torch=parts[0], transformers=parts[1], textual=parts[2], tiktoken=parts[3],
                    torch_default_threads=int(parts[4]))
    return info


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="few repetitions and the small cases only: checks the script runs")
    p.add_argument("--reps", type=int, default=None, help="measured repetitions per side and round")
    p.add_argument("--rounds", type=int, default=None,
                   help="rounds in which every side runs in turn (default 3; --quick: 1)")
    p.add_argument("--threads", type=int, default=None, help="torch threads on both sides (default: all usable cores)")
    p.add_argument("--json-out", type=Path, default=None, help="also write the JSON result to this file")
    return p


def default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def emit(name: str, args: argparse.Namespace, markdown: str, results: list[dict], extra: dict | None = None) -> None:
    """Print the table and one JSON line; write the JSON to --json-out."""
    payload = {"benchmark": name, "command": shlex.join([Path(sys.executable).name, *sys.argv]),
               "time": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "quick": bool(getattr(args, "quick", False)),
               "machine": machine(), "markdown": markdown, "results": results, **(extra or {})}
    print(markdown)
    line = json.dumps(payload)
    print(line)
    if args.json_out is not None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(line + "\n")
