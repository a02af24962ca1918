"""The `gpt-tui` entry point, with fast paths that skip the CLI framework where start-up shows.

Typer, and the pydantic it imports, take longer to start than tokenizing takes, and would delay
the session's first frame. So two forms are handled here:
- `gpt-tui tokenize TEXT` with --ids, --json, --allow-special, -e/--encoding, -m/--model in any
  order, printed by `print_tokens`, the same function the Typer command calls;
- `gpt-tui` alone or with --model/-m, --device, --dtype, --no-mouse: the interactive session,
  started exactly as the Typer callback starts it.
Anything else (other commands, --help, --debug, stdin, unknown options, any error) goes to the
Typer CLI (gpt_tui.cli), which owns the messages and exit codes.

Nothing here imports torch, typer or rich (rich only to draw the table).
"""

from __future__ import annotations

import json
import math
import os
import sys

FLAGS = {"--ids": "ids", "--json": "as_json", "--allow-special": "allow_special"}
DTYPE_NAMES = ("auto", "float32", "bfloat16", "float16")
SCHEMA_VERSION = 1  # of every --json object; README's "JSON output" says what a change means


def device_ok(spec: str) -> bool:
    """Whether `spec` is spelled as a device: auto, cpu, cuda, cuda:N or mps."""
    spec = spec.strip().lower()
    kind, colon, index = spec.partition(":")
    if colon:
        return kind == "cuda" and index.isdigit()
    return spec in ("auto", "cpu", "cuda", "mps")
VALUES = {"--encoding": "encoding", "-e": "encoding", "--model": "model", "-m": "model"}


def show(text: str) -> str:
    """A token made visible: spaces, newlines and tabs as glyphs."""
    return text.replace(" ", "␣").replace("\n", "⏎").replace("\t", "→").replace("\r", "␍")


def dump(obj: dict) -> None:
    """One JSON object out, its schema_version first; NaN and infinities (absent tokens of a compact
    model) become null."""

    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    sys.stdout.write(json.dumps({"schema_version": SCHEMA_VERSION, **clean(obj)}, ensure_ascii=False) + "\n")


def make_console(**options):
    """A rich Console whose closed pipe is a BrokenPipeError like any other write's (rich's own
    handler exits with status 1, which would call a reader that went away an error)."""
    from rich.console import Console

    class PipeConsole(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError(32, "Broken pipe")

    return PipeConsole(**options)


def tokenize_pieces(text: str, encoding: str | None, model: str | None, allow_special: bool):
    """(tokenizer, pieces) for the text: the named encoding, else the model's."""
    from gpt_tui.engine.tokenizer import get_tokenizer, tokenizer_for_model

    tok = get_tokenizer(encoding) if encoding else tokenizer_for_model(model)
    return tok, tok.tokenize(text, allow_special=allow_special)


def model_label(encoding: str | None, model: str | None) -> str | None:
    """The "model" of tokenize's JSON: the one whose tokenizer was used, none when -e named one."""
    return None if encoding else (model or "bundled")


def print_tokens(text: str, tok, pieces, ids: bool = False, as_json: bool = False,
                 model: str | None = None) -> None:
    """What `gpt-tui tokenize` prints: JSON, the ids alone, or coloured chips and a table.
    model: the model whose tokenizer this is (None when an encoding was named instead)."""
    if as_json:
        dump({
            "model": model, "encoding": tok.name, "n_tokens": len(pieces), "n_chars": len(text),
            "tokens": [{"id": p.id, "text": p.text, "bytes": p.bytes.hex(), "start": p.start, "end": p.end}
                       for p in pieces],
        })
        return
    if ids:
        sys.stdout.write(" ".join(str(p.id) for p in pieces) + "\n")
        return
    TokenTable(pieces, tok.name, len(text)).write(sys.stdout)


CHIP_STYLES = ("black on #8ecae6", "black on #ffb703", "black on #b5e48c", "black on #f4acb7", "black on #cdb4db")
TABLE_COLUMNS = (("#", "right"), ("id", "right"), ("text", "left"), ("bytes", "left"), ("chars", "left"))


class TokenTable:
    """The people's view of a tokenization: the text as chips (one colour per token; a bar between
    tokens without colour), a summary line, and a table with a row per token.

    Drawn here, line by line, in time and memory linear in the tokens (rich's Table lays out every
    cell and held a 1 MB text's table in over a GB for minutes). What depends only on the token
    (its chip, its cells, their widths) is computed once per distinct id. Cells wider than their
    column wrap onto continuation lines, so nothing is cut; the output is written in blocks.
    """

    BLOCK = 4096  # lines per write

    def __init__(self, pieces, encoding: str, n_chars: int) -> None:
        self.pieces, self.encoding, self.n_chars = pieces, encoding, n_chars
        self.bars = True  # a bar after each chip, where colour cannot tell them apart

    def _screen(self, out):
        """(width, style -> (start, end) escape codes, or None for plain text) for this output."""
        try:
            tty = out.isatty()
        except (AttributeError, ValueError, OSError):
            tty = False
        if not (tty or os.environ.get("FORCE_COLOR") or os.environ.get("TTY_COMPATIBLE") == "1"):
            columns = os.environ.get("COLUMNS", "")
            return (int(columns) if columns.isdigit() and int(columns) > 0 else 80), None
        from rich.console import Console
        from rich.style import Style

        console = Console(file=out, highlight=False)
        if not console.is_terminal:
            return console.width, None

        self.bars = console.no_color or console.color_system is None

        def codes(style: str) -> tuple[str, str]:
            if console.no_color or console.color_system is None:
                style = " ".join(w for w in style.split() if w in ("bold", "italic", "dim"))
            rendered = Style.parse(style).render("\0", color_system=console.color_system) if style else "\0"
            begin, _, end = rendered.partition("\0")
            return begin, end

        return console.width, codes

    def write(self, out) -> None:
        width, codes = self._screen(out)
        lines: list[str] = []

        def emit(line: str) -> None:
            lines.append(line)
            if len(lines) >= self.BLOCK:
                out.write("\n".join(lines) + "\n")
                lines.clear()

        for line in self._chip_lines(width, codes):
            emit(line)
        dim = codes("dim") if codes else ("", "")
        emit(f"{dim[0]}{self.encoding}: {len(self.pieces)} tokens, {self.n_chars} characters{dim[1]}")
        for line in self._table_lines(width, codes):
            emit(line)
        if lines:
            out.write("\n".join(lines) + "\n")

    # -- chips ------------------------------------------------------------------------------------

    def _chip_lines(self, width: int, codes):
        """The chips folded at `width` cells (a chip that crosses the edge continues on the next line)."""
        styled = {}  # (style index, partial) -> escape codes
        seen: dict[int, tuple[str, list[int]]] = {}  # token id -> (chip, its characters' cells)
        line: list[str] = []
        used = 0
        last = len(self.pieces) - 1
        for i, p in enumerate(self.pieces):
            chip = seen.get(p.id)
            if chip is None:
                shown = show(p.text) + ("|" if self.bars else "")
                chip = seen[p.id] = (shown, [_cells(c) for c in shown] if not shown.isascii() else [1] * len(shown))
            shown, cells = chip
            if i == last and self.bars:  # bars go between tokens: st|raw|berry
                shown, cells = shown[:-1], cells[:-1]
            if codes:
                key = (i % len(CHIP_STYLES), p.is_partial)
                if key not in styled:
                    styled[key] = codes(CHIP_STYLES[key[0]] + (" italic" if key[1] else ""))
                begin, end = styled[key]
            else:
                begin = end = ""
            start = 0
            while start < len(shown):
                take, room = 0, width - used
                while start + take < len(shown) and cells[start + take] <= room:
                    room -= cells[start + take]
                    take += 1
                if take == 0 and used == 0:  # a character wider than the whole line
                    take, room = 1, 0
                if take:
                    line.append(begin + shown[start:start + take] + end)
                    used = width - room
                    start += take
                if start < len(shown):
                    yield "".join(line)
                    line, used = [], 0
        if line:
            yield "".join(line)

    # -- the table --------------------------------------------------------------------------------

    def _table_lines(self, width: int, codes):
        cells: dict[int, tuple[str, str, int]] = {}  # token id -> (text cell, bytes cell, text cell's width)
        rows = []
        for p in self.pieces:
            cached = cells.get(p.id)
            if cached is None:
                shown = p.text if p.is_partial else repr(p.text)  # partial characters are escapes already
                cached = cells[p.id] = (shown, p.bytes.hex(" "), len(shown) if shown.isascii() else _cells_of(shown))
            rows.append(cached)
        n = len(self.pieces)
        w_index = max(1, len(str(n - 1)))
        w_id = max(2, max((len(str(p.id)) for p in self.pieces), default=0))
        w_chars = max(5, max((len(f"{p.start}–{p.end}") for p in self.pieces), default=0))
        w_text = max(4, max((r[2] for r in rows), default=0))
        w_bytes = max(5, max((len(r[1]) for r in rows), default=0))
        fixed = w_index + w_id + w_chars + 4 * 2
        if fixed + w_text + w_bytes > width:  # share what is left between the two long columns
            room = max(16, width - fixed)
            w_text = min(w_text, max(room // 2, room - w_bytes))
            w_bytes = max(5, room - w_text)
            w_bytes -= (w_bytes + 1) % 3  # whole bytes per line: "ab cd ef"
        bold = codes("bold") if codes else ("", "")
        header = "  ".join(("#".rjust(w_index), "id".rjust(w_id), "text".ljust(w_text), "bytes".ljust(w_bytes), "chars"))
        yield f"{bold[0]}{header.rstrip()}{bold[1]}"
        for i, (p, (text_cell, bytes_cell, text_cells)) in enumerate(zip(self.pieces, rows)):
            text_parts = [text_cell] if text_cells <= w_text else _fold(text_cell, w_text)
            byte_parts = [bytes_cell] if len(bytes_cell) <= w_bytes else _fold_hex(bytes_cell, w_bytes)
            for k in range(max(len(text_parts), len(byte_parts))):
                t = text_parts[k] if k < len(text_parts) else ""
                b = byte_parts[k] if k < len(byte_parts) else ""
                pad = w_text - (len(t) if t.isascii() else _cells_of(t))
                if k == 0:
                    line = f"{i:>{w_index}}  {p.id:>{w_id}}  {t}{' ' * pad}  {b:<{w_bytes}}  {p.start}–{p.end}"
                else:
                    line = f"{'':>{w_index}}  {'':>{w_id}}  {t}{' ' * pad}  {b}"
                yield line.rstrip()


def _cells(char: str) -> int:
    """Terminal cells of one character (rich's table; 0 for a zero-width mark)."""
    from rich.cells import get_character_cell_size

    return get_character_cell_size(char)


def _cells_of(text: str) -> int:
    return sum(_cells(c) for c in text)


def _fold(text: str, width: int) -> list[str]:
    """text cut into pieces of at most `width` cells."""
    parts, part, used = [], "", 0
    for char in text:
        size = _cells(char)
        if used + size > width and part:
            parts.append(part)
            part, used = "", 0
        part += char
        used += size
    return parts + [part] if part else parts


def _fold_hex(hex_bytes: str, width: int) -> list[str]:
    per_line = max(1, (width + 1) // 3)
    pairs = hex_bytes.split(" ")
    return [" ".join(pairs[i:i + per_line]) for i in range(0, len(pairs), per_line)]


def parse_tokenize(args: list[str]) -> dict | None:
    """The arguments after `tokenize` as keywords, or None for anything this fast path leaves to Typer."""
    out: dict = {"text": None, "encoding": None, "model": None, "ids": False, "as_json": False,
                 "allow_special": False}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in FLAGS:
            out[FLAGS[arg]] = True
        elif arg in VALUES or arg.split("=", 1)[0] in ("--encoding", "--model"):
            name, eq, value = arg.partition("=")
            if not eq:
                if i + 1 >= len(args) or args[i + 1].startswith("-"):
                    return None
                i += 1
                value = args[i]
            if not value:
                return None
            out[VALUES[name]] = value
        elif arg.startswith("-") or out["text"] is not None:
            return None  # --help, an unknown option, "--", a second argument: Typer decides
        else:
            out["text"] = arg
        i += 1
    return out if out["text"] is not None else None


def fast_tokenize(args: list[str]) -> bool:
    """Run `tokenize` without Typer when the arguments allow; False to hand over to the full CLI."""
    parsed = parse_tokenize(args)
    if parsed is None:
        return False
    text = parsed.pop("text")
    try:
        tok, pieces = tokenize_pieces(text, parsed["encoding"], parsed["model"], parsed["allow_special"])
    except Exception:  # an unknown encoding, a missing file…: the full CLI words the error
        return False
    print_tokens(text, tok, pieces, ids=parsed["ids"], as_json=parsed["as_json"],
                 model=model_label(parsed["encoding"], parsed["model"]))
    return True


SESSION_VALUES = {"--model": "model", "-m": "model", "--device": "device", "--dtype": "dtype", "--theme": "theme"}


def parse_session(args: list[str]) -> dict | None:
    """Options of the bare `gpt-tui` command as run()'s keywords, or None to leave them to Typer."""
    out: dict = {"model": None, "device": "auto", "dtype": "auto", "mouse": True, "theme": None}
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if arg == "--no-mouse":
            out["mouse"] = False
        elif name in SESSION_VALUES and (eq or name == arg):
            if not eq:
                if i + 1 >= len(args) or args[i + 1].startswith("-"):
                    return None
                i += 1
                value = args[i]
            if not value or (eq and name == "-m"):
                return None
            if (name == "--device" and not device_ok(value)) or (name == "--dtype" and value.lower() not in DTYPE_NAMES):
                return None  # Typer says what is wrong, as a usage error
            out[SESSION_VALUES[name]] = value
        else:
            return None  # a command, --help, --debug, an unknown option: Typer decides
        i += 1
    return out


def main() -> int:
    """The console script: an exit status, and every error as one line (gpt_tui/errors.py)."""
    from gpt_tui.errors import guarded

    argv = sys.argv[1:]
    return guarded(lambda: dispatch(argv), debug="--debug" in argv)


def dispatch(argv: list[str]) -> int | None:
    if sys.stdout is None:  # started with stdout closed (`>&-`): nowhere to write anything
        import errno

        raise OSError(errno.EBADF, "standard output is closed")
    if argv == ["--version"]:
        from gpt_tui import __version__

        sys.stdout.write(f"gpt-tui {__version__}\n")
        return 0
    if "_GPT_TUI_COMPLETE" in os.environ:  # the shell asks for completions
        from gpt_tui.cli import main as cli_main

        return cli_main()
    session = parse_session(argv)
    if session is not None and session["theme"] is not None:
        from gpt_tui.settings import theme_names  # textual's list: the session imports textual anyway

        if session["theme"] not in theme_names():
            session = None  # Typer says which themes there are, as a usage error
    if session is not None:
        from gpt_tui.app import run  # imports textual, not torch: the model loads after the first frame
        from gpt_tui.errors import interruptible

        with interruptible():  # the session handles its signals itself
            return run(**session)
    if argv[:1] == ["tokenize"] and fast_tokenize(argv[1:]):
        return 0
    from gpt_tui.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
