"""The interactive session: start-up, keystroke latency, and decoding while the UI paints.

1. Launch -> first painted frame, and launch -> bundled model ready: the real `gpt-tui` command in
   a pseudo-terminal (120×40); times are when the first frame's text ("starting…"/"loading…") and
   the loaded model's status line ("… parameters") reach the terminal. In turns with each launch,
   the references the targets were set against: a bare Textual app's first frame (same terminal)
   and a process that only imports torch (start to exit) — the drift of a shared machine then
   shows in them too.
2. Keystroke -> all panels updated, for a 64-token text on the small shape (random GPT-2-small
   weights): inside the app (App.run_test, headless, every frame also serialised to escape
   codes), from the key press to the last paint once no worker runs (the debounce included).
3. Greedy decoding alone vs inside the app while it paints every token, with torch using all
   cores and with gpt-tui's interactive setting (one core left to the UI).

    python benchmarks/bench_app.py
    python benchmarks/bench_app.py --quick
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from common import ROOT, checkpoint, default_threads, emit, fmt, parser, run_checked, stats, table, work

FIRST_FRAME = ("starting", "loading")
MODEL_READY = ("params ·",)  # the status line once the model is loaded
# The reference for the first frame: a Textual app that paints one line and nothing else.
BARE_TEXTUAL = ("from textual.app import App\nfrom textual.widgets import Static\n"
                "class Bare(App):\n    def compose(self):\n        yield Static('starting')\nBare().run()\n")
ANSI = re.compile(rb"\x1b(\[[0-9;?<>=!$]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[PX^_][^\x1b]*\x1b\\|.)")


def gpt_tui_command() -> list[str]:
    exe = Path(sys.executable).with_name("gpt-tui")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "gpt_tui"]


def launch(cmd: list[str], want: int = 2, size=(120, 40), timeout: float = 60.0) -> dict:
    """Run cmd on a pseudo-terminal; seconds from launch until each marker's text is on screen."""
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor", "COLUMNS": str(size[0]),
           "LINES": str(size[1])}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
                            start_new_session=True)
    os.close(slave)
    raw, marks = b"", {}
    deadline = start + timeout
    while time.perf_counter() < deadline and len(marks) < want:
        ready, _, _ = select.select([master], [], [], 0.05)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:
            break
        if not chunk:
            break
        now = time.perf_counter() - start
        raw += chunk
        visible = ANSI.sub(b"", raw).decode(errors="replace")
        if "first_frame" not in marks and any(m in visible for m in FIRST_FRAME):
            marks["first_frame"] = now
        if "model_ready" not in marks and any(m in visible for m in MODEL_READY):
            marks["model_ready"] = now
    visible = ANSI.sub(b"", raw).decode(errors="replace")
    try:
        os.write(master, b"\x11")  # ctrl+q
        proc.wait(timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        proc.kill()
        proc.wait()
    finally:
        os.close(master)
    marks["tail"] = " ".join(visible.split())[-300:]
    return marks


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="model for the start-up test (default: the bundled one)")
    args = p.parse_args()
    reps = args.reps or (2 if args.quick else 7)
    threads = args.threads or default_threads()
    sys.path.insert(0, str(ROOT))
    from gpt_tui.engine.fast import interactive_threads
    from gpt_tui.engine.loading import bundled_model_dir

    results, sections = [], []

    # 1. start-up -----------------------------------------------------------------------------------------
    try:
        import gpt_tui.app.app  # noqa: F401
        app_ok, why = True, ""
    except ImportError as exc:
        app_ok, why = False, str(exc)
    if not app_ok:
        sections.append(f"SKIPPED: the session (gpt_tui.app) cannot be imported yet: {why}\n")
    else:
        cmd = [*gpt_tui_command(), *(["--model", args.model] if args.model else [])]
        bundled = args.model is not None or bundled_model_dir() is not None
        runs, bare, torch_import = [], [], []
        for _ in range(reps):  # in turns: gpt-tui, a bare Textual app, a bare torch import
            runs.append(launch(cmd, want=2 if bundled else 1))
            bare.append(launch([sys.executable, "-c", BARE_TEXTUAL], want=1).get("first_frame"))
            torch_import.append(run_checked([sys.executable, "-c", "import torch"]).wall_s)
        first = [r["first_frame"] for r in runs if "first_frame" in r]
        ready = [r["model_ready"] for r in runs if "model_ready" in r]
        bare = [x for x in bare if x is not None]
        rows = []
        if first:
            rows.append(["launch → first painted frame", fmt(stats([1e3 * x for x in first]), 0), "≤ 500"])
        else:
            rows.append(["launch → first painted frame", "not seen: " + runs[-1]["tail"][-120:], "≤ 500"])
        if bare:
            rows.append(["reference: a bare Textual app, launch → first frame",
                         fmt(stats([1e3 * x for x in bare]), 0), ""])
        if ready:
            rows.append([f"launch → {'bundled ' if args.model is None else ''}model ready (status painted)",
                         fmt(stats([1e3 * x for x in ready]), 0), "≤ 2000"])
        elif not bundled:
            rows.append(["launch → bundled model ready", "SKIPPED: no bundled model (model/ is empty)", "≤ 2000"])
        else:
            rows.append(["launch → model ready", "not seen: " + runs[-1]["tail"][-120:], "≤ 2000"])
        rows.append(["reference: `python -c \"import torch\"`, start to exit",
                     fmt(stats([1e3 * x for x in torch_import]), 0), ""])
        sections.append(f"Start-up, `{' '.join(Path(c).name for c in cmd)}` in a 120×40 pseudo-terminal, "
                        f"{len(runs)} launches, each followed by the two references: milliseconds, "
                        f"median (min–max).\n\n"
                        + table(["", "ms", "target"], rows) + "\n")
        results.append({"case": "startup", "first_frame_s": first, "model_ready_s": ready, "command": cmd,
                        "bare_textual_first_frame_s": bare, "import_torch_s": torch_import})

    # 2. keystroke -> panels ----------------------------------------------------------------------------------
    if app_ok:
        ckpt = str(checkpoint("small"))
        rows = []
        for t in sorted({threads, interactive_threads(threads)}, reverse=True):
            k = work("app_keystroke", ckpt=ckpt, threads=t, tokens=64, reps=max(4, 2 * reps))
            lat, ana = stats(k["latency_ms"]), stats(k["analysis_ms"])
            rows.append([f"{t}", fmt(lat, 0), fmt(ana, 0), f"{k['rss_mb']:.0f}"])
            results.append({"case": "keystroke", "threads": t, "latency_ms": lat, "analysis_ms": ana,
                            "rss_mb": k["rss_mb"]})
        # The same with the logit lens shown (issue 11): its table and its overview come from workers.
        t = interactive_threads(threads)
        k = work("app_keystroke", ckpt=ckpt, threads=t, tokens=64, reps=max(4, 2 * reps), panel="6")
        lens_rows = [[f"{t}", fmt(stats(k["analysis_ms"]), 0), fmt(stats(k["lens_ms"]), 0),
                      fmt(stats(k["lens_painted_ms"]), 0), fmt(stats(k["grid_ms"]), 0), fmt(stats(k["latency_ms"]), 0)]]
        results.append({"case": "keystroke_lens", "threads": t, "analysis_ms": stats(k["analysis_ms"]),
                        "lens_ms": stats(k["lens_ms"]), "lens_painted_ms": stats(k["lens_painted_ms"]),
                        "grid_ms": stats(k["grid_ms"]), "latency_ms": stats(k["latency_ms"])})
        sections.append("Keystroke with the logit lens panel shown (same text and model): milliseconds from the key "
                        "press, median (min–max); the lens of the selected token and the positions × depths "
                        "overview (13 × 64 × 50,257 × 768 multiply-adds) come from workers that a newer key cancels."
                        "\n\n" + table(["torch threads", "key → analysis handled", "key → lens table handled",
                                         "key → lens table painted (target ≤ 150)", "key → overview",
                                         "key → idle"], lens_rows) + "\n")
        sections.append("Keystroke → all panels updated, 64-token text, small shape (GPT-2-small-sized random "
                        "weights), float32: milliseconds from the key press, median (min–max); a key starts the "
                        "analysis at once when none is running.\n\n"
                        + table(["torch threads", "key → last panel painted", "key → analysis handled",
                                 "peak RSS MiB"], rows) + "\n")

    # 3. decoding while painting ---------------------------------------------------------------------------------
    if app_ok:
        ckpt = str(checkpoint("small"))
        rows = []
        for t in sorted({threads, interactive_threads(threads)}, reverse=True):
            d = work("app_decode", ckpt=ckpt, threads=t, new_tokens=64 if args.quick else 128,
                     reps=max(2, reps // 2))
            bare, inapp = stats(d["bare_tok_s"]), stats(d["in_app_tok_s"])
            rows.append([f"{t}", fmt(bare), fmt(inapp), f"{100 * inapp['median'] / bare['median']:.0f}%"])
            results.append({"case": "decode_while_painting", "threads": t, "bare_tok_s": bare, "in_app_tok_s": inapp,
                            "kept": inapp["median"] / bare["median"], "paints_per_run": d["paints_per_run"]})
        sections.append("Greedy decoding, small shape, float32: tokens/s alone and inside the session while it "
                        "paints every token, median (min–max).\n\n"
                        + table(["torch threads", "alone", "in the app, painting", "kept"], rows)
                        + f"\n\n(gpt-tui's interactive setting on this machine: {interactive_threads()} torch "
                          f"thread(s); all cores: {threads}.)\n")

    emit("app", args, "\n".join(sections), results, {"reps": reps})


if __name__ == "__main__":
    main()
