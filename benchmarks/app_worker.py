"""The interactive session, measured from inside (Textual's App.run_test, headless).

Run by benchmarks/worker.py (`app_keystroke`, `app_decode`), each in its own process. Headless
Textual still lays out and renders every frame to strips; the wrapper below also serialises each
frame to terminal escape codes, as a real terminal would get, and timestamps it: a "paint".
"""

from __future__ import annotations

import asyncio
import time


class Probe:
    """Timestamps of paints and of messages as the app handles them (cheap: it shares the UI thread)."""

    def __init__(self) -> None:
        self.paints: list[float] = []
        self.by_name: dict[str, list[tuple[float, object]]] = {}

    def hook(self, message) -> None:
        self.by_name.setdefault(type(message).__name__, []).append((time.perf_counter(), message))

    def attach(self, app) -> None:
        from textual._compositor import CompositorUpdate

        original = app._display

        def display(screen, renderable):
            original(screen, renderable)
            if renderable is not None:
                if isinstance(renderable, CompositorUpdate):
                    renderable.render_segments(app.console)  # what a terminal would be sent
                self.paints.append(time.perf_counter())

        app._display = display

    def seen(self, name: str, since: float) -> list:
        items = self.by_name.get(name, [])
        i = len(items)
        while i and items[i - 1][0] >= since:  # newest last: walk back only over the recent ones
            i -= 1
        return items[i:]


def _app_module():
    try:
        from gpt_tui.app.app import GptTuiApp
    except ImportError as exc:  # the session is not there (yet)
        raise SystemExit(f"SKIP: gpt_tui.app is not usable ({exc})") from None
    return GptTuiApp


async def _until(predicate, timeout: float, step: float = 0.002) -> bool:
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()


async def _idle(app, probe: Probe, quiet: float = 0.08, timeout: float = 10.0) -> float:
    """Wait until no worker runs and nothing was painted for `quiet` seconds; the last paint time."""
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        busy = any(w.is_running for w in app.workers)
        last = probe.paints[-1] if probe.paints else 0.0
        if not busy and time.perf_counter() - last >= quiet:
            return last
        await asyncio.sleep(0.005)
    return probe.paints[-1] if probe.paints else float("nan")


def app_keystroke(ckpt: str, threads: int, tokens: int, reps: int, panel: str = "") -> dict:
    """Keystroke -> all panels updated, for a text of `tokens` tokens (the debounce included).
    panel: the key of a panel to show first (e.g. "6", the logit lens); its workers' results are
    timed too (LensReady: the selected token's lens; LensGridReady: the positions × depths overview)."""
    import torch

    torch.set_num_threads(threads)
    GptTuiApp = _app_module()
    from common import text_of

    from gpt_tui.engine.loading import load_model
    from gpt_tui.engine.session import Session

    session = Session(load_model(ckpt, device="cpu", dtype="float32"))
    text = text_of(tokens - 1) + " hi"  # the keys below extend it
    assert len(session.tokenizer.encode(text)) == tokens
    probe = Probe()
    app = GptTuiApp(session=session, encodings=[], seed=0, text=text)
    results = {"latency_ms": [], "analysis_ms": [], "kinds": []}

    async def main():
        async with app.run_test(size=(120, 40), message_hook=probe.hook) as pilot:
            probe.attach(app)
            await _until(lambda: probe.seen("AnalysisReady", 0), 60)
            await _idle(app, probe, quiet=0.3)
            if panel:
                await pilot.press("tab", panel, "ctrl+e")  # show the panel, then back to the text
                await _idle(app, probe, quiet=0.3)
            await pilot.press("end")  # the prompt starts with its text selected: typing would replace it
            await _idle(app, probe, quiet=0.3)
            typed = "story of a cat that sat on the mat and looked at the dog"  # each key: a text not seen before
            current = text
            for i in range(reps + 1):  # the first round warms up
                char = typed[i % len(typed)]
                current += char
                key = "space" if char == " " else char
                start = time.perf_counter()
                await pilot._app._press_keys([key])
                expected = current

                def handled():
                    return [t for t, m in probe.seen("AnalysisReady", start) if m.analysis.text == expected]

                ok = await _until(lambda: handled(), 10)
                done = await _idle(app, probe)
                if i == 0 or not ok:
                    continue
                results["latency_ms"].append(1e3 * (done - start))
                results["analysis_ms"].append(1e3 * (handled()[0] - start))
                if panel:
                    lens = [t for t, m in probe.seen("LensReady", start)]
                    grid = [t for t, m in probe.seen("LensGridReady", start) if m.analysis.text == expected]
                    results.setdefault("lens_ms", []).append(1e3 * (lens[-1] - start) if lens else float("nan"))
                    drawn = [t for t in probe.paints if lens and t >= lens[-1]]  # the frame that shows it
                    results.setdefault("lens_painted_ms", []).append(1e3 * (drawn[0] - start) if drawn else float("nan"))
                    results.setdefault("grid_ms", []).append(1e3 * (grid[-1] - start) if grid else float("nan"))
                results["kinds"].append(key)
            await pilot.press("ctrl+q")

    asyncio.run(main())
    results["threads"] = torch.get_num_threads()
    results["tokens"] = tokens
    return results


def app_decode(ckpt: str, threads: int, new_tokens: int, reps: int) -> dict:
    """Tokens/s of greedy generation alone, then inside the app while it paints every token."""
    import torch

    torch.set_num_threads(threads)
    GptTuiApp = _app_module()
    from common import prompt_ids, text_of

    from gpt_tui.engine.loading import load_model
    from gpt_tui.engine.sampling import SamplingParams
    from gpt_tui.engine.session import Session

    session = Session(load_model(ckpt, device="cpu", dtype="float32"))
    runs = []  # (tokens, seconds) of every generation, timed inside the generating thread
    generate = session.generate

    def timed_generate(*args, **kwargs):
        start, n = time.perf_counter(), 0
        for token in generate(*args, **kwargs):
            n += 1
            yield token
        runs.append((n, time.perf_counter() - start))

    session.generate = timed_generate  # the app calls it from its worker thread: the same clock both ways
    ids = prompt_ids(16)
    params = SamplingParams(temperature=0)
    list(session.generate(ids, params, 8, seed=0, stop_at_eot=False))  # warm-up
    for _ in range(reps):
        list(session.generate(ids, params, new_tokens, seed=0, stop_at_eot=False))
    bare = [n / s for n, s in runs[1:]]
    runs.clear()

    probe = Probe()
    app = GptTuiApp(session=session, encodings=[], seed=0, text=text_of(16))
    paints = []

    async def main():
        async with app.run_test(size=(120, 40), message_hook=probe.hook) as pilot:
            probe.attach(app)
            await _until(lambda: probe.seen("AnalysisReady", 0), 60)
            await _idle(app, probe, quiet=0.3)
            screen = app.explorer
            screen.run_command("/temp 0")
            for _ in range(reps + 1):
                start = time.perf_counter()
                screen.run_command(f"/gen {new_tokens}")
                await _until(lambda: probe.seen("GenerationDone", start), 300, step=0.01)
                await _idle(app, probe, quiet=0.2)
                paints.append(sum(1 for t in probe.paints if t >= start))
            await pilot.press("ctrl+q")

    asyncio.run(main())
    in_app = [n / s for n, s in runs]  # the app's own generations, while it painted each token
    return {"bare_tok_s": bare, "in_app_tok_s": in_app[1:] or in_app, "paints_per_run": paints,
            "threads": torch.get_num_threads(), "new_tokens": new_tokens}
