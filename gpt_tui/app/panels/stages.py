"""The four stages of one token (seed 000 §3): its embedding (token + position), what each block's
attention and MLP add to it, the final residual through the final LayerNorm and the unembedding,
and the softmax — with the size of every addition and its direct effect on the final top token."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from ..widgets.style import bar, message, pct, visible
from .base import ComputedPanel

DIRECT = ("→ logit: the linearised direct effect on the final top token's logit (each part through the final "
          "LayerNorm with its scale at this token held fixed); embedding + every block + the norm's bias = the logit")


class StagesReady(Message):
    def __init__(self, key: tuple, stages) -> None:
        super().__init__()
        self.key, self.stages = key, stages


class StagesPanel(ComputedPanel, Widget, can_focus=True):
    """Embedding → attention and MLP of every block → unembedding → softmax, for the selected token."""

    NAME = "stages"
    TITLE = "Four stages of one token"
    KEY = "7"
    READS = ("session", "analysis", "selected", "notice")
    PLACE = None
    HINT = "←→ token"
    DEFAULT_CSS = """
    StagesPanel { height: 1fr; }
    """

    session = reactive(None)
    analysis = reactive(None, always_update=True)
    selected = reactive(0)
    stages = reactive(None, always_update=True)

    def prepare(self, analysis, position: int) -> None:
        if analysis.residual is not None:
            analysis.stages(position)

    def watch_analysis(self) -> None:
        self.refresh_wanted()

    def watch_selected(self) -> None:
        self.refresh_wanted()

    def _position(self) -> int | None:
        a = self.analysis
        if a is None or a.residual is None:
            return None
        return min(max(self.selected, 0), a.n_tokens - 1)

    def wanted(self) -> tuple | None:
        position = self._position()
        return None if position is None else (id(self.analysis), position)

    def compute(self, key: tuple) -> None:
        self._stages_worker(self.analysis, key[1], key)

    @work(thread=True, exclusive=True, group="stages", exit_on_error=False)
    def _stages_worker(self, analysis, position: int, key: tuple) -> None:
        self.post_message(StagesReady(key, analysis.stages(position)))

    def on_stages_ready(self, message: StagesReady) -> None:
        message.stop()
        if self.is_wanted(message.key):
            self.stages = message.stages

    def render(self):
        a, position = self.analysis, self._position()
        if a is None:
            return message(self.notice)
        if position is None:
            return message("this analysis has no residual stream")
        st = self.stages
        if st is None or not self.is_wanted((id(a), position)) or st.position != position:
            return message("following the token through the layers…")
        return self._draw(st, self.content_size.width)

    def _draw(self, st, width: int):
        text = self.session.tokenizer.token_text if self.session is not None else str
        final = visible(text(st.final_token))
        head = Text()
        head.append(visible(text(st.token_id)), style="bold reverse")
        head.append(f" at token {st.position} · the model's top-1 after it is ", style="dim")
        head.append(final, style="bold")
        one = Text()
        one.append("1 Embedding  ", style="bold")
        one.append(f"token |W_E| {st.token_norm:.3f}")
        one.append(" + ", style="dim")
        one.append("no position table" if st.position_norm is None else f"position |W_pos| {st.position_norm:.3f}")
        one.append(f" → |x| {st.embed_norm:.3f}   → logit {st.embed_direct_logit:+.3f}")
        two = Text("2 Attention and MLP, block by block: each adds its output to the residual stream", style="bold")
        largest = max([st.embed_norm, *(b.attn_norm for b in st.blocks), *(b.mlp_norm for b in st.blocks)])
        push = max([abs(st.embed_direct_logit), *(abs(b.attn_direct_logit) for b in st.blocks),
                    *(abs(b.mlp_direct_logit) for b in st.blocks), 1e-9])
        bar_w = max(4, min(16, (width - 60) // 3))
        table = Table.grid(padding=(0, 1))
        for justify in ("right", "right", "left", "right", "left", "right", "left", "right", "left", "right"):
            table.add_column(justify=justify, no_wrap=True)
        table.add_row(*(Text(h, style="dim") for h in
                        ("block", "|attn|", "", "→ logit", "", "|mlp|", "", "→ logit", "", "|resid|")))
        for b in st.blocks:
            table.add_row(str(b.layer), f"{b.attn_norm:.2f}", Text(bar(b.attn_norm / largest, bar_w), style="#7fb3ff"),
                          f"{b.attn_direct_logit:+.3f}", self._push(b.attn_direct_logit, push, bar_w),
                          f"{b.mlp_norm:.2f}", Text(bar(b.mlp_norm / largest, bar_w), style="#e6a07a"),
                          f"{b.mlp_direct_logit:+.3f}", self._push(b.mlp_direct_logit, push, bar_w),
                          f"{b.resid_norm:.2f}")
        three = Text()
        three.append("3 Unembedding  ", style="bold")
        three.append(f"final residual |x| {st.final_norm:.3f} → final LayerNorm (its bias adds {st.bias_logit:+.3f}) "
                     f"→ W_U: logit of {final} = {st.final_logit:.3f}")
        four = Text()
        four.append("4 Softmax  ", style="bold")
        four.append(f"p({final}) = {pct(st.final_prob)}  ")
        four.append(bar(st.final_prob, 20), style="#9ee6a0")
        return Group(head, Text(), one, two, table, three, four, Text(), Text(DIRECT, style="dim"))

    @staticmethod
    def _push(value: float, scale: float, width: int) -> Text:
        """A signed effect as a bar: ▶ towards the top token (green), ◀ away from it (red)."""
        glyph, style = ("▶", "#9ee6a0") if value >= 0 else ("◀", "#e66a6a")
        return Text(glyph + bar(abs(value) / scale, width - 1), style=style)
