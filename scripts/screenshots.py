"""Make the README's screenshots with the app itself: SVGs of every panel into screenshots/.

Uses the bundled model when model/model.safetensors exists, else a tiny random model (and says
so). Run: python scripts/screenshots.py  (or: make screenshots)
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "screenshots"


def open_session():
    from gpt_tui.engine.session import Session

    if (ROOT / "model" / "model.safetensors").exists():
        session = Session.open(None, device="cpu", dtype="float32")
        print(f"using the bundled model ({session.name})")
        return session
    from gpt_tui.engine.config import GPTConfig
    from gpt_tui.engine.gpt import GPT
    from gpt_tui.engine.loading import LoadedModel
    from gpt_tui.engine.tokenizer import get_tokenizer

    print("no bundled model (model/model.safetensors): using a TINY RANDOM model — the numbers mean nothing")
    model = GPT(GPTConfig(n_ctx=256, n_embd=64, n_layer=4, n_head=4))
    model.init_weights(seed=0)
    return Session(LoadedModel(model.eval(), get_tokenizer("gpt2"), name="tiny-random", source="screenshots"))


async def settle(pilot, delay: float = 0.25) -> None:
    from textual.worker import WorkerCancelled

    await pilot.pause(delay)
    for _ in range(3):
        try:
            await pilot.app.workers.wait_for_complete()
        except WorkerCancelled:  # superseded by a newer worker of its group: wait for that one
            await pilot.pause()
            await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def shot(session, name: str, size: tuple[int, int], text: str, steps=(), maximize: str | None = None) -> None:
    """Open the app, type text, run /commands or keys, maximise a panel, save an SVG."""
    from gpt_tui.app.app import GptTuiApp

    app = GptTuiApp(session=session, seed=1)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        app.screen.set_text(text)
        await settle(pilot)
        for step in steps:
            if step.startswith("/"):
                app.screen.run_command(step)
            else:
                await pilot.press(step)
            await settle(pilot)
        if maximize:
            app.screen.maximize(app.screen.query_one(f"#{maximize}"), container=False)
            await settle(pilot)
        path = app.save_screenshot(filename=f"{name}.svg", path=str(OUT))
        print(f"  {Path(path).relative_to(ROOT)}")


async def main() -> None:
    OUT.mkdir(exist_ok=True)
    started = time.perf_counter()
    session = open_session()
    wide = (120, 40)
    await shot(session, "overview-120x40", wide, "The most effective way to learn computer science is")
    await shot(session, "narrow-80x24", (80, 24), "strawberry")
    await shot(session, "tokens", wide, "strawberry · 草莓 🍓\tand a new⏎line".replace("⏎", "\n"),
               steps=["/ids", "/select 3"], maximize="tokens")
    await shot(session, "neighbours", wide, "The king and the queen", steps=["/select 1"], maximize="neighbours")
    await shot(session, "analogy", wide, "The king and the queen", steps=["/analogy king man woman"],
               maximize="neighbours")
    await shot(session, "attention", wide, "The cat sat on the mat. The cat sat on the",
               steps=["/layer 1", "/select 12"], maximize="attention")
    await shot(session, "attention-overview", wide, "The cat sat on the mat. The cat sat on the",
               steps=["/overview"], maximize="attention")
    await shot(session, "candidates", wide, "The most effective way to learn computer science is",
               steps=["/temp 0.8", "/topk 8", "/topp 0.9"], maximize="candidates")
    await shot(session, "generation", wide, "Once upon a time", steps=["/seed 1", "/gen 60"], maximize="generation")
    # Inside the layers: panels shown alone when chosen (issue 11).
    seed_text = "The most effective way to learn computer science is"
    await shot(session, "lens", wide, seed_text, steps=["/panel lens"])
    await shot(session, "stages", wide, seed_text, steps=["/panel stages"])
    await shot(session, "context", wide, seed_text, steps=['/compare "machine learning model" "fashion model"'])
    await shot(session, "positions", wide, seed_text, steps=["/panel positions"])
    await shot(session, "card", wide, seed_text, steps=["/panel card"])
    await shot(session, "chat", wide, "", steps=["/chat", "/chat user: What is the best way to learn?"])
    print(f"done in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    asyncio.run(main())
