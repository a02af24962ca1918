"""/export and Ctrl+S: what the session shows, saved to the current directory as the screen (SVG,
Textual's own screenshot) and the analysis behind it (JSON, in the command line's shapes:
`gpt-tui next/attention --json`), under one time-stamped name."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from gpt_tui.fastcli import SCHEMA_VERSION


def _finite(value):
    """NaN and infinities (ids a compact model never saw) as null, as every --json does."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def analysis_json(session, analysis, params, layer: int, head: int, selected: int | None) -> dict:
    """The analysis on screen: its tokens, the next-token candidates under the knobs, and the
    attention head on screen."""
    candidates = session.candidates(analysis.last_logits, params, top=20)
    kept, mass = session.survivors(analysis.last_logits, params)
    out = {
        "schema_version": SCHEMA_VERSION, "model": session.name, "text": analysis.text,
        "n_tokens": analysis.n_tokens, "dropped": analysis.dropped, "selected": selected,
        "tokens": [{"id": p.id, "text": p.text, "start": p.start, "end": p.end} for p in analysis.pieces],
        "temperature": params.temperature, "top_k": params.top_k, "top_p": params.top_p,
        "survivors": kept, "kept_mass": mass,
        "candidates": [{"id": c.id, "text": c.text, "logit": c.logit, "prob": c.prob,
                        "adjusted_prob": c.adjusted_prob, "cum_prob": c.cum_prob} for c in candidates],
    }
    if analysis.attention is not None and layer < analysis.n_layer and head < analysis.n_head:
        out["attention"] = {"layer": layer, "head": head,
                            "weights": analysis.attention[layer, head].astype(float).tolist()}
    return _finite(out)


def export(app, data: dict | None, directory: Path | None = None) -> list[Path]:
    """Save the screen (and the analysis, when there is one) as gpt-tui-YYYYmmdd-HHMMSS.{svg,json}."""
    directory = Path.cwd() if directory is None else directory
    stem = time.strftime("gpt-tui-%Y%m%d-%H%M%S")
    saved = [Path(app.save_screenshot(filename=f"{stem}.svg", path=str(directory)))]
    if data is not None:
        path = directory / f"{stem}.json"
        path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        saved.append(path)
    return saved
