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
