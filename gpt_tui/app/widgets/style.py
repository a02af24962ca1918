"""Formatting shared by the panels: visible whitespace, percentages, bars and glyph ramps.

Formatting only: every number passed in was computed by the engine.
"""

from __future__ import annotations

from rich.text import Text

# Chip backgrounds: neighbours always differ (index modulo a palette of more than one colour).
CHIP_COLOURS = ("#34508a", "#7a3b6b", "#2f6b4f", "#85601f", "#5a3f8c", "#1f6f80")
RAMP = " ░▒▓█"  # glyph density carries the meaning without colour
# Below 1% shows blank, then ░ <10% ▒ <30% ▓ <60% █: over a long text attention spreads thin
# (a fiftieth each for fifty keys), and a grid blank below 5% looked empty.
RAMP_LIMITS = (0.01, 0.1, 0.3, 0.6)
MASKED = "·"  # the causal mask: a future token, not a small weight


def visible(text: str) -> str:
    """Whitespace made visible: ␣ space, ⏎ newline, → tab; other control characters escaped."""
    out = []
    for ch in text:
        if ch == " ":
            out.append("␣")
        elif ch == "\n":
            out.append("⏎")
        elif ch == "\t":
            out.append("→")
        elif ch == "\r":
            out.append("␍")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def pct(p: float, width: int = 0) -> str:
    """0.1234 -> '12.34%'."""
    return f"{p * 100:.2f}%".rjust(width)


def bar(fraction: float, width: int) -> str:
    """A horizontal bar of eighths: fraction in [0, 1] of width cells."""
    fraction = min(max(fraction, 0.0), 1.0)
    eighths = round(fraction * width * 8)
    full, rest = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[rest] if rest else ""
    return ("█" * full + partial).ljust(width)[:width]


def ramp_level(weight: float) -> int:
    for level, limit in enumerate(RAMP_LIMITS):
        if weight < limit:
            return level
    return len(RAMP_LIMITS)


def shade(weight: float) -> str:
    """A background colour from dark to bright for a weight in [0, 1] (colour is a bonus)."""
    w = min(max(weight, 0.0), 1.0)
    r, g, b = int(20 + 200 * w), int(30 + 150 * w), int(60 + 40 * w)
    return f"#{r:02x}{g:02x}{b:02x}"


def prob_style(prob: float) -> str:
    """A token's style by the probability it had: colour plus a non-colour cue (bold/italic)."""
    if prob >= 0.5:
        return "bold #9ee6a0"
    if prob >= 0.1:
        return "#e6d49e"
    if prob >= 0.01:
        return "italic #e6a07a"
    return "italic underline #e66a6a"


def token_label(text: str, limit: int) -> str:
    """A token's visible text cut to limit cells."""
    shown = visible(text)
    return shown if len(shown) <= limit else shown[: max(1, limit - 1)] + "…"


def message(text: str, style: str = "dim italic") -> Text:
    return Text(text, style=style)


def grid(rows: list[list[str | Text]], justify: str, header: list[str] | None = None,
         row_styles: list[str] | None = None, header_style: str = "dim", gap: int = 1,
         min_widths: list[int] | None = None) -> list[Text]:
    """Cells laid out in aligned columns, one Text per line: what rich's Table.grid draws, for the
    panels redrawn on every key (a Table measures and renders every cell several times: ~10 ms a
    draw at 20 rows). justify: one letter per column, "l" or "r"; a row style is the base of its
    cells' own styles; lines never wrap (they are cropped at the panel's edge)."""
    cells = [[c if isinstance(c, Text) else Text(c) for c in row] for row in rows]
    if header:
        cells.insert(0, [Text(h) for h in header])
    widths = [max((row[i].cell_len for row in cells), default=0) for i in range(len(justify))]
    if min_widths:
        widths = [max(w, m) for w, m in zip(widths, min_widths)]
    styles = ([header_style] if header else []) + (row_styles or [""] * len(rows))
    lines = []
    for row, style in zip(cells, styles):
        line = Text(no_wrap=True, overflow="crop", end="")
        for i, cell in enumerate(row):
            pad = " " * (widths[i] - cell.cell_len)  # in the cell's own style, as a Table pads a cell
            if i:
                line.append(" " * gap)
            if justify[i] == "r":
                line.append(pad, style=cell.style or None)
            line.append_text(cell)
            if justify[i] != "r":
                line.append(pad, style=cell.style or None)
        if style:
            line.stylize_before(style)
        lines.append(line)
    return lines
