"""Model card: the architecture, every weight matrix counted the way the seeds count them
(W_E = vocabulary × d_model = …), where the biases are, why W_E may have fewer rows than the
vocabulary, and the device, dtype and memory the model takes here."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from ..widgets.style import message
from .base import ComputedPanel


class CardReady(Message):
    def __init__(self, session, info: dict) -> None:
        super().__init__()
        self.session, self.info = session, info


class CardPanel(ComputedPanel, Widget, can_focus=True):
    """The loaded model's numbers."""

    NAME = "card"
    TITLE = "Model card"
    KEY = "0"
    READS = ("session", "notice")
    PLACE = None
    HINT = ""
    DEFAULT_CSS = """
    CardPanel { height: 1fr; }
    """

    session = reactive(None)
    info = reactive(None, always_update=True)

    def watch_session(self) -> None:
        self.info = None
        self.forget()

    def wanted(self) -> int | None:
        return None if self.session is None else id(self.session)

    def compute(self, key: int) -> None:
        self._info_worker(self.session)

    @work(thread=True, exclusive=True, group="card", exit_on_error=False)
    def _info_worker(self, session) -> None:
        info = session.info()
        description = session.loaded.meta.get("description")
        if description:
            info["description"] = description
        self.post_message(CardReady(session, info))

    def on_card_ready(self, message: CardReady) -> None:
        message.stop()
        if message.session is self.session:
            self.info = message.info

    def render(self):
        if self.session is None:
            return message(self.notice)
        d = self.info
        if d is None:
            return message("counting parameters…")
        parts = [Text.assemble((d["model"], "bold"), (f"  {d['source']}", "dim"))]
        if d.get("description"):
            parts.append(Text(d["description"]))
        parts.append(Text(
            f"{d['n_layer']} blocks · {d['n_head']} heads of {d['head_dim']} · d_model {d['n_embd']} · context "
            f"{d['n_ctx']} · vocabulary {d['vocab_size']:,} ({d['tokenizer']}) · positions {d['positions']} · "
            f"{d['norm']} · {d['activation']}"))
        table = Table.grid(padding=(0, 2))
        table.add_column(no_wrap=True)
        table.add_column()
        table.add_column(justify="right", no_wrap=True)
        table.add_row(*(Text(h, style="dim") for h in ("matrix", "counted as", "in the model")))
        for m in d["matrices"]:
            table.add_row(m["name"], m["formula"], f"{m['total']:,}")
        table.add_row(Text("total", style="bold"), "", Text(f"{d['parameters']:,}", style="bold"))
        parts += [Text(), table, Text()]
        parts += [Text.assemble(("· ", "dim"), note) for note in d["notes"]]
        parts.append(Text())
        parts.append(Text(
            f"{d['device']} · {d['dtype']} · {d['weight_bytes'] / 2**20:,.1f} MiB of weights · KV cache "
            f"{d['kv_cache_bytes_per_token'] / 2**10:,.1f} KiB per token "
            f"({d['kv_cache_bytes_per_token'] * d['n_ctx'] / 2**20:,.1f} MiB for a full context) · {d['inference']}",
            style="dim"))
        return Group(*parts)
