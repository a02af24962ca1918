"""`gpt-tui serve`: the interactive session in a web browser, through textual-serve.

textual-serve starts one gpt-tui process per browser tab (the session drawn by Textual's web
driver), so every tab loads its own copy of the model: the command says so before it listens.
It listens on localhost unless told otherwise, and has no password: on another address, anyone
who can reach it uses this machine's model. textual-serve is the optional extra `serve`.
"""

from __future__ import annotations

import ipaddress
import shlex
import sys
from typing import Annotated, Optional

import typer

from gpt_tui.cli import DeviceOpt, DtypeOpt, ModelOpt, _model_spec, app, handle_errors
from gpt_tui.cli_options import complete_theme, examples, parse_theme
from gpt_tui.engine.errors import GptTuiError

INSTALL = "pip install 'gpt-tui-explorer[serve]' (or: pip install textual-serve)"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def session_command(model: str | None, device: str, dtype: str, theme: str | None) -> str:
    """The shell command textual-serve runs for each tab: this same Python and gpt-tui."""
    args = [sys.executable, "-m", "gpt_tui", "--device", device, "--dtype", dtype]
    if model is not None:
        args += ["--model", model]
    if theme is not None:
        args += ["--theme", theme]
    return shlex.join(args)


@app.command(epilog=examples(
    "gpt-tui serve",
    "gpt-tui serve --port 8080 -m gpt2",
    "gpt-tui serve --host 0.0.0.0  # every address of this machine: no password!",
))
@handle_errors
def serve(
    host: Annotated[str, typer.Option(help="the address to listen on; another than localhost lets "
                                           "other machines in")] = "localhost",
    port: Annotated[int, typer.Option(min=1, max=65535, help="the port to listen on")] = 8000,
    model: ModelOpt = None, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto",
    theme: Annotated[Optional[str], typer.Option(parser=parse_theme, metavar="NAME", autocompletion=complete_theme,
                                                 show_default=False, help="the session's colours")] = None,
) -> None:
    """The interactive session in a web browser (each tab runs its own session and model)."""
    try:
        from textual_serve.server import Server
    except ImportError:
        raise GptTuiError(f"serve needs textual-serve: {INSTALL}") from None
    command = session_command(_model_spec(model), device, dtype, theme)
    say = sys.stderr.write
    say(f"gpt-tui serve: open http://{host}:{port} in a browser (Ctrl+C stops)\n")
    say("note: each browser tab starts its own gpt-tui, which loads its own copy of the model "
        "(memory and start-up time per tab); close the tabs you do not use\n")
    if not is_loopback(host):
        say(f"warning: listening on {host}, with no password and no TLS: anyone who can reach this "
            "address can use this machine's model\n")
    server = Server(command, host=host, port=port, title="gpt-tui")
    try:
        server.serve()
    except OSError as exc:
        raise GptTuiError(f"cannot listen on {host}:{port}: {(exc.strerror or str(exc)).lower()}") from None
