"""Option parsers and help pieces shared by every command: --device and --dtype are checked when
the line is parsed, so a bad one is a usage error (exit 2) before anything loads, and --help and
shell completion list the choices."""

from __future__ import annotations

import typer

from gpt_tui.fastcli import DTYPE_NAMES, device_ok

DEVICE_METAVAR = "[auto|cpu|cuda|cuda:N|mps]"
DTYPE_METAVAR = "[" + "|".join(DTYPE_NAMES) + "]"


def parse_device(value: str) -> str:
    """auto | cpu | cuda | cuda:N | mps: the spelling is checked here; whether it exists, at load."""
    if not device_ok(value):
        raise typer.BadParameter(f"{value!r} is not a device; use auto, cpu, cuda, cuda:N or mps")
    return value.strip().lower()


def choice(names: tuple[str, ...]):
    """A parser that accepts one of `names` (any case) and names them all otherwise."""

    def parse(value: str) -> str:
        if value.lower() not in names:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(names)}")
        return value.lower()

    return parse


def complete_from(names: tuple[str, ...]):
    return lambda incomplete: [n for n in names if n.startswith(incomplete)]


DEVICE_OPTION = dict(parser=parse_device, metavar=DEVICE_METAVAR,
                     autocompletion=complete_from(("auto", "cpu", "cuda", "mps")))
DTYPE_OPTION = dict(parser=choice(DTYPE_NAMES), metavar=DTYPE_METAVAR, autocompletion=complete_from(DTYPE_NAMES))


def parse_theme(value: str) -> str:
    from gpt_tui.settings import theme_names

    if value not in theme_names():
        raise typer.BadParameter(f"no theme {value!r}; choose one of {', '.join(theme_names())}")
    return value


def complete_theme(incomplete: str) -> list[str]:
    from gpt_tui.settings import theme_names

    return [n for n in theme_names() if n.startswith(incomplete)]


def examples(*lines: str) -> str:
    """A command's --help epilog: one example per line (Typer joins single line breaks, so each
    line is its own paragraph)."""
    return "Examples:\n\n" + "\n\n".join(f"  $ {line}" for line in lines)


def split_debug(args: list[str]) -> tuple[list[str], bool]:
    """(args without --debug, whether it was there): --debug is accepted anywhere on the line,
    before or after the command, up to a `--` that ends the options."""
    if "--" in args:
        cut = args.index("--")
        head, found = split_debug(args[:cut])
        return head + args[cut:], found
    kept = [a for a in args if a != "--debug"]
    return kept, len(kept) != len(args)


def hoist(args: list[str], option: str) -> list[str]:
    """`option VALUE` (or `option=VALUE`) moved to the front wherever it was, so that an option of
    the whole program is also accepted after the command (up to a `--`)."""
    end = args.index("--") if "--" in args else len(args)
    front, rest, i = [], [], 0
    while i < end:
        arg = args[i]
        if arg == option and i + 1 < end:
            front += args[i:i + 2]
            i += 2
            continue
        (front if arg.startswith(option + "=") else rest).append(arg)
        i += 1
    return front + rest + args[end:]
