"""A model downloading from the Hub shows its progress in the session (bytes, rate, time left) in
the header and in the panels that wait for it, instead of a bare "loading …"."""

from __future__ import annotations

import threading

from app_helpers import screen_text, settle

WIDE = (120, 40)


async def test_the_header_follows_a_download(make_app, monkeypatch):
    from gpt_tui.engine import hub
    from gpt_tui.engine.files import ModelLoadError
    from gpt_tui.engine.session import Session

    halfway, finish = threading.Event(), threading.Event()

    def downloading(spec, device="auto", dtype="auto"):  # stands in for a download in the load worker
        report = hub._reporter.get()
        assert report is not None, "the load worker set no reporter"
        report(hub.Progress("org/big", 3 * 2**20, 12 * 2**20, 1.5))
        halfway.set()
        finish.wait(30)
        raise ModelLoadError("stopped by the test")

    monkeypatch.setattr(Session, "open", classmethod(lambda cls, *a, **k: downloading(*a, **k)))
    app = make_app(session=None, model="org/big")
    async with app.run_test(size=WIDE) as pilot:
        for _ in range(300):  # not settle(): that waits for the load worker, which waits for us
            await pilot.pause(0.1)
            shown = screen_text(app)
            if halfway.is_set() and "downloading" in shown:
                break
        finish.set()
        await settle(pilot, 0.2)
    assert "downloading org/big: 3.0 MiB of 12.0 MiB · 2.0 MiB/s · 0:04 left" in shown
    assert "loading org/big (downloading" in shown
