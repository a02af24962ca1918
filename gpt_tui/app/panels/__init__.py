"""The panel registry: the screen is composed from PANELS, in this order.

To add a panel (one new file, one line here, and its tests):
  1. Write gpt_tui/app/panels/NAME.py with a widget class that mixes in `Panel` (panels/base.py)
     and declares NAME, TITLE, KEY (the next free digit), READS (the screen state it draws from,
     as reactives of the same names), PLACE (a row of the wide layout, or None to be shown full
     size when chosen), HINT (its own keys) and its DEFAULT_CSS. It draws from what it READS and
     sends messages up (messages.py) for anything it wants the screen to do; slow work runs in
     the panel's own thread worker, and a panel that computes only while it is on screen mixes in
     `ComputedPanel` instead (see stages.py, the smallest). Its /panel command, its key, its tab and
     its entries in /help and the palette all follow from the registry.
  2. Add the class to PANELS below.
  3. Test it with pilot.press in tests/app/ (and a snapshot if it draws something new).
If it reads state the screen does not hold yet, add a `var` to STATE in app.py.
"""

from __future__ import annotations

from .attention import AttentionPanel
from .base import Panel
from .candidates import CandidatesPanel
from .card import CardPanel
from .chat import ChatPanel
from .context import ContextPanel
from .generation import GenerationPanel
from .lens import LensPanel
from .neighbours import NeighboursPanel
from .positions import PositionsPanel
from .stages import StagesPanel
from .tokens import TokensPanel

PANELS: tuple[type[Panel], ...] = (
    TokensPanel,
    AttentionPanel,
    CandidatesPanel,
    NeighboursPanel,
    GenerationPanel,
    # Inside the layers (issue 11): each shown alone when chosen.
    LensPanel,
    StagesPanel,
    ContextPanel,
    PositionsPanel,
    ChatPanel,
    CardPanel,
)


def check(panels=PANELS) -> None:
    """Names and keys are unique (a mistake here would shadow a panel)."""
    names = [p.NAME for p in panels]
    keys = [p.KEY for p in panels if p.KEY]
    if len(set(names)) != len(names) or len(set(keys)) != len(keys):
        raise ValueError(f"panel names and keys must be unique: {names} {keys}")


check()

__all__ = ["PANELS", "Panel"]
