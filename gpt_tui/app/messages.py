"""Messages between the workers, the panels and the screen ("attributes down, messages up")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message


@dataclass
class _Msg(Message):
    """Textual's Message initialises itself in __post_init__, so dataclasses just work."""


@dataclass
class ModelLoaded(_Msg):
    """A model finished loading in the load worker."""

    session: Any  # gpt_tui.engine.session.Session
    # Other encodings available offline; None: not known yet, an EncodingsFound follows.
    encodings: list[str] | None = field(default_factory=list)


@dataclass
class EncodingsFound(_Msg):
    """The other encodings available offline, found by the load worker after its ModelLoaded:
    finding out builds each of them (a fifth of a second), which the model's status need not wait for."""

    session: Any  # the session they were found for
    encodings: list[str]


@dataclass
class ModelFailed(_Msg):
    """A model could not be loaded; message is one line."""

    spec: str | None
    message: str


@dataclass
class AnalysisReady(_Msg):
    """One forward pass done. Stale request ids are dropped by the screen."""

    request_id: int
    analysis: Any  # gpt_tui.engine.analysis.Analysis
    encodings: dict[str, tuple] = field(default_factory=dict)  # other encoding name -> pieces


@dataclass
class AnalysisFailed(_Msg):
    request_id: int
    message: str


@dataclass
class NeighboursReady(_Msg):
    request_id: object  # what was asked: ("token", id, without_common) or ("analogy", words, without_common)
    neighbours: Any  # gpt_tui.engine.analysis.Neighbours
    analogy: bool = False


@dataclass
class NeighboursFailed(_Msg):
    request_id: object
    message: str


@dataclass
class GenerationStep(_Msg):
    """One token of a generation run."""

    run_id: int
    token: Any  # gpt_tui.engine.session.GeneratedToken
    step: bool = False  # came from step mode (carries the logits it was drawn from)


@dataclass
class GenerationDone(_Msg):
    run_id: int
    cancelled: bool = False
    error: str | None = None


@dataclass
class TokenSelected(_Msg):
    """A panel asks to select the token at this position (None = follow the last token)."""

    index: int | None


@dataclass
class CandidatePicked(_Msg):
    """Append this token to the prompt's text."""

    id: int


@dataclass
class KnobChanged(_Msg):
    """A knob was edited in the generation panel: name in temperature/top_k/top_p/max/seed."""

    name: str
    value: str


@dataclass
class HeadPicked(_Msg):
    layer: int
    head: int
