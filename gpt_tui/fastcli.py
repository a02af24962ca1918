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
import sys

FLAGS = {"--ids": "ids", "--json": "as_json", "--allow-special": "allow_special"}
VALUES = {"--encoding": "encoding", "-e": "encoding", "--model": "model", "-m": "model"}


def show(text: str) -> str:
    """A token made visible: spaces, newlines and tabs as glyphs."""
    return text.replace(" ", "␣").replace("\n", "⏎").replace("\t", "→").replace("\r", "␍")


def dump(obj) -> None:
    """JSON out; NaN and infinities (absent tokens of a compact model) become null."""

    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    sys.stdout.write(json.dumps(clean(obj), ensure_ascii=False) + "\n")


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


def print_tokens(text: str, tok, pieces, ids: bool = False, as_json: bool = False) -> None:
    """What `gpt-tui tokenize` prints: JSON, the ids alone, or coloured chips and a table."""
    if as_json:
        dump({
            "encoding": tok.name, "n_tokens": len(pieces), "n_chars": len(text),
            "tokens": [{"id": p.id, "text": p.text, "bytes": p.bytes.hex(), "start": p.start, "end": p.end}
                       for p in pieces],
        })
        return
    if ids:
        sys.stdout.write(" ".join(str(p.id) for p in pieces) + "\n")
        return
    from rich.text import Span, Text

    console = make_console(highlight=False)
    chips = Text()
    styles = ("black on #8ecae6", "black on #ffb703", "black on #b5e48c", "black on #f4acb7", "black on #cdb4db")
    for i, p in enumerate(pieces):
        chips.append(show(p.text), style=styles[i % len(styles)] + (" italic" if p.is_partial else ""))
        if not console.is_terminal:  # without colour, a bar marks where one token ends
            chips.append("|")
    console.print(chips)
    console.print(Text(f"{tok.name}: {len(pieces)} tokens, {len(text)} characters", style="dim"))
    # Partial characters are already escapes; whole ones are quoted so spaces show.
    rows = [(str(i), str(p.id), p.text if p.is_partial else repr(p.text), p.bytes.hex(" "), f"{p.start}–{p.end}")
            for i, p in enumerate(pieces)]
    lines = simple_table(TABLE_COLUMNS, rows, console.width)
    if lines is not None:
        console.print(Text("\n".join(lines), spans=[Span(0, len(lines[0]), "bold")]))
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for col, just in TABLE_COLUMNS:
        table.add_column(col, justify=just)
    for row in rows:
        table.add_row(*map(Text, row))  # Text: the cells are data, never markup
    console.print(table)


TABLE_COLUMNS = (("#", "right"), ("id", "right"), ("text", "left"), ("bytes", "left"), ("chars", "left"))


def simple_table(columns, rows, width: int) -> list[str] | None:
    """The lines of rich's Table(box=None, pad_edge=False) when it needs no layout: every cell on
    one line and the whole as wide as its widest cells, which fit in `width`. Columns are then as
    wide as their widest cell (header included), two spaces apart, every line padded to the end.

    None when rich has to lay the table out (a cell with a newline, a tab or another character
    that is not printable; a table too wide, whose columns rich shrinks and wraps). Drawing the
    common case here skips rich's per-cell rendering, a tenth of `gpt-tui tokenize`'s run time.
    """
    from rich.cells import cell_len

    header = tuple(name for name, _ in columns)
    if not all(cell.isprintable() for row in rows for cell in row):
        return None
    sized = [[(cell, cell_len(cell)) for cell in row] for row in (header, *rows)]
    widths = [max(row[c][1] for row in sized) for c in range(len(columns))]
    if sum(widths) + 2 * (len(widths) - 1) > width:
        return None
    right = [just == "right" for _, just in columns]
    return ["  ".join(" " * (w - n) + cell if r else cell + " " * (w - n)
                      for (cell, n), w, r in zip(row, widths, right)) for row in sized]


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
    print_tokens(text, tok, pieces, ids=parsed["ids"], as_json=parsed["as_json"])
    return True


SESSION_VALUES = {"--model": "model", "-m": "model", "--device": "device", "--dtype": "dtype"}


def parse_session(args: list[str]) -> dict | None:
    """Options of the bare `gpt-tui` command as run()'s keywords, or None to leave them to Typer."""
    out: dict = {"model": None, "device": "auto", "dtype": "auto", "mouse": True}
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
    session = parse_session(argv)
    if session is not None:
        from gpt_tui.app import run  # imports textual, not torch: the model loads after the first frame

        return run(**session)
    if argv[:1] == ["tokenize"] and fast_tokenize(argv[1:]):
        return 0
    from gpt_tui.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
