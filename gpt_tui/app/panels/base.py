"""What every panel declares. See gpt_tui/app/panels/__init__.py for how to add one."""

from __future__ import annotations

from typing import ClassVar

from textual.reactive import reactive


class Panel:
    """Mixed into a panel's widget class (a Widget, or a container such as Vertical).

    NAME      its id and its /panel name (lower case, one word)
    TITLE     the border title
    KEY       the key that shows it from outside the text editor (a digit), or ""
    READS     the screen's state it reads, bound by data binding: each name must be a reactive of
              the panel and a var of ExplorerScreen (see STATE in app.py); the panel redraws when
              one of them changes, and never asks the screen for anything else
    PLACE     where it sits when the terminal is wide: (row, width share) with row one of "top",
              "main", "bottom"; None: shown full size when chosen (Esc returns)
    HINT      the panel's own keys, for the key bar while it has the focus
    """

    NAME: ClassVar[str] = ""
    TITLE: ClassVar[str] = ""
    KEY: ClassVar[str] = ""
    READS: ClassVar[tuple[str, ...]] = ()
    PLACE: ClassVar[tuple[str, int] | None] = None
    HINT: ClassVar[str] = ""
    ALLOW_MAXIMIZE = True

    # Shown while there is nothing to draw: "loading …", "no model: …", "type some text …".
    notice = reactive("type some text in the editor below")

    def on_mount(self) -> None:
        # Textual runs the handler of every class in the MRO: a panel's own on_mount runs as well.
        self.border_title = self.TITLE

    _due: frozenset[str] = frozenset()  # methods asked for by `soon`, not yet called

    def soon(self, method) -> None:
        """Call `method` (one of this panel's) once the screen has set everything it sets together: a
        new analysis reaches a panel before the selection that goes with it, and work started in
        between would be for a token nobody selected. Asking again before then makes no second call."""
        name = method.__name__
        if name not in self._due:
            self._due = self._due | {name}
            self.call_later(self._call_due, name)

    def _call_due(self, name: str) -> None:
        self._due = self._due - {name}
        getattr(self, name)()

    def prepare(self, analysis, position: int) -> None:
        """Compute what the panel will draw for a new analysis at the selected `position`, into the
        analysis's memo: the screen calls it in the analysis worker right after the forward pass, for
        panels on screen, while the UI thread draws the others; the panel's own ask then finds it.
        It runs in that worker's thread: it may read the panel, never change it."""


class ComputedPanel(Panel):
    """A panel whose content a thread worker computes, and only while the panel is on screen: the
    logit lens overview or a comparison must never cost a keystroke when nobody looks at it.

    A subclass says what it would show now as a key (`wanted`: None when there is nothing to ask
    for) and starts the worker for a key (`compute`); it calls `refresh_wanted` when what it reads
    changes, and keeps a worker's result only while `is_wanted(key)` (a newer one supersedes it).
    A subclass that does more when what it wants changes extends `update_wanted`.
    """

    _shown = False
    _wanted: object = None

    def on_show(self) -> None:
        self._shown = True
        self.refresh_wanted()

    def on_hide(self) -> None:
        self._shown = False

    def wanted(self) -> object | None:
        raise NotImplementedError

    def compute(self, key) -> None:
        raise NotImplementedError

    def refresh_wanted(self) -> None:
        """Ask again what the panel would show, once the screen's state has settled (see `soon`)."""
        self.soon(self.update_wanted)

    def update_wanted(self) -> None:
        if not self._shown:
            return
        key = self.wanted()
        if key is not None and key != self._wanted:
            self._wanted = key
            self.compute(key)

    @property
    def on_screen(self) -> bool:
        return self._shown

    def is_wanted(self, key) -> bool:
        return key == self._wanted

    def forget(self) -> None:
        """What was computed no longer holds (a new model): ask again."""
        self._wanted = None
        self.refresh_wanted()
