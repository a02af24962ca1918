"""Generation runs: which tokens continue which text, with which seed.

Plain classes, tested without a UI. The screen starts a worker with what `GenerationRuns.start`
returns and feeds back each token; stale runs (stopped, or replaced by a newer one) are dropped here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any


def new_seed() -> int:
    return random.randrange(2**31)


@dataclass
class SeedPolicy:
    """The seed of the next run. Unpinned, every run gets a new one (F5 twice: two texts);
    pinned (/seed S), every run uses S (same seed, same text)."""

    seed: int = field(default_factory=new_seed)
    pinned: bool = False

    def pin(self, seed: int | None) -> None:
        if seed is None:
            self.pinned = False
        else:
            self.seed, self.pinned = seed, True

    def for_run(self) -> int:
        """The seed for a run starting now; the next run gets a new one unless pinned."""
        seed = self.seed
        if not self.pinned:
            self.seed = new_seed()
        return seed


@dataclass(frozen=True)
class RunRequest:
    run_id: int
    ids: list[int]  # the context the run continues
    count: int  # tokens to draw
    seed: int  # of this run's generator
    step: bool


class GenerationRuns:
    """The continuation on screen: its prompt, its tokens, and the run that is adding to it."""

    def __init__(self) -> None:
        self.prompt_text = ""
        self.prompt_ids: list[int] = []
        self.tokens: list[Any] = []  # engine GeneratedToken, in order
        self.run_id = 0
        self.seed = 0  # the seed the continuation on screen was drawn with
        self._stopped = -1
        self.running = False

    def start(self, text: str, encode, count: int, seeds: SeedPolicy, step: bool) -> RunRequest:
        """A new run: a fresh continuation of `text`, or (step mode, same text) one more token of
        the continuation on screen, drawn with the run's seed + the tokens already drawn."""
        fresh = not step or not self.tokens or self.prompt_text != text
        if fresh:
            self.prompt_text = text
            self.prompt_ids = encode(text) if text else []
            self.tokens = []
            self.seed = seeds.for_run()
        self.run_id += 1
        self.running = True
        seed = self.seed + len(self.tokens) if step else self.seed
        return RunRequest(self.run_id, self.prompt_ids + [t.id for t in self.tokens], 1 if step else count, seed, step)

    def accepts(self, run_id: int) -> bool:
        return run_id == self.run_id and run_id != self._stopped

    def add(self, run_id: int, token) -> bool:
        if not self.accepts(run_id):
            return False
        self.tokens.append(token)
        return True

    def done(self, run_id: int) -> bool:
        if not self.accepts(run_id):
            return False
        self.running = False
        return True

    def stop(self) -> bool:
        """Drop whatever the running run still sends; True if one was running."""
        if not self.running:
            return False
        self._stopped = self.run_id
        self.running = False
        return True

    def reset(self) -> None:
        self.stop()
        self.tokens = []
        self.prompt_text = ""
        self.prompt_ids = []
