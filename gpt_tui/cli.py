"""gpt-tui's command line: the interactive session by default, a subcommand per panel.

Imports are lazy so that `tokenize` never imports torch and `--help` is instant. Every command
prints Rich output for people and, with --json, one JSON object for programs. Exit codes: 0 on
success, 1 on runtime errors (one line on stderr), 2 on usage errors, 130 on Ctrl+C.
"""

from __future__ import annotations

import codecs
import functools
import math
import sys
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup
try:
    from typer.exceptions import TyperException  # newer typer carries its own copy of click
except ImportError:  # older typer: click's own
    from click.exceptions import ClickException as TyperException

from gpt_tui.cli_options import (DEVICE_OPTION, DTYPE_OPTION, choice, complete_theme, examples, hoist, parse_theme,
                                 split_debug)
from gpt_tui.errors import UsageError, finish_output, interruptible, kill_as_ctrl_c, report
from gpt_tui.fastcli import dump, show  # shared with the fast entry point; no heavy imports

# What Typer raises to end a command on purpose (typer.Exit, Abort) or for a usage error: these
# pass through the error handling below (Typer vendors click; these are its classes).
TYPER_EXITS = (typer.Exit, typer.Abort, TyperException, SystemExit)


class GuardedGroup(TyperGroup):
    """The command group with gpt-tui's error handling around everything it runs: any exception
    becomes one line on stderr and an exit status (gpt_tui/errors.py), usage errors included
    (click's own are boxes of several lines). In-process test runners go through it too."""

    def invoke(self, ctx):
        try:
            result = super().invoke(ctx)
            finish_output()
            return result
        except TYPER_EXITS:
            raise
        except BaseException as exc:  # noqa: BLE001 - turned into a message and a status
            if _debug:
                raise
            raise typer.Exit(report(exc)) from None

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        global _debug
        args, found = split_debug(list(sys.argv[1:] if args is None else args))
        args = hoist(args, "--revision")  # an option of the whole program, accepted anywhere
        _debug = _debug or found
        try:
            # One program name whatever started it (`python -m gpt_tui` too): its completion
            # variable is _GPT_TUI_COMPLETE, and usage lines say `gpt-tui`.
            status = super().main(args, "gpt-tui", complete_var, standalone_mode=False, **extra)
        except BaseException as exc:  # noqa: BLE001 - click's usage errors, Ctrl+C while parsing
            if isinstance(exc, SystemExit) or (_debug and not isinstance(exc, TyperException)):
                raise
            status = report(exc)
        status = status if isinstance(status, int) else 0
        if standalone_mode:
            sys.exit(status)
        return status


app = typer.Typer(
    cls=GuardedGroup,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    no_args_is_help=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="See how a GPT works, from a terminal. With no command, opens the interactive session.",
    epilog=examples("gpt-tui", "gpt-tui --model gpt2-xl --device cuda --dtype bfloat16", "gpt-tui --theme nord",
                    "gpt-tui tokenize strawberry", "gpt-tui COMMAND --help"),
)

ModelOpt = Annotated[Optional[str], typer.Option("--model", "-m", help="bundled model if omitted; a directory, "
                     ".safetensors, .bin, nanoGPT ckpt.pt or gpt2 / gpt2-medium / gpt2-large / gpt2-xl / distilgpt2")]
DeviceOpt = Annotated[str, typer.Option(**DEVICE_OPTION, help="where the model runs")]
DtypeOpt = Annotated[str, typer.Option(**DTYPE_OPTION, help="auto: bfloat16 on CUDA, else float32")]
TextArg = Annotated[Optional[str], typer.Argument(help="the text; '-' or omitted: read stdin", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON object")]
BosOpt = Annotated[bool, typer.Option("--bos", help="prepend <|endoftext|> to the text")]
SpecialOpt = Annotated[bool, typer.Option("--allow-special", help="treat <|endoftext|> typed in the text as the special token")]
# The sampling knobs are checked in one place, SamplingParams, which the session shares.
TempOpt = Annotated[float, typer.Option("--temperature", "-t", help="0 = greedy, inf = uniform")]
TopKOpt = Annotated[int, typer.Option("--top-k", "-k", help="0 = off")]
TopPOpt = Annotated[float, typer.Option("--top-p", "-p", help="in (0, 1]; 1 = off")]
SeedOpt = Annotated[Optional[int], typer.Option(min=0, max=2**64 - 1,
                    help="same seed, same text (random when omitted, and printed)")]

_debug = False
_revision: str | None = None  # --revision, for every command that loads a model
_before_command: dict = {}  # --model, --device, --dtype given before the command's name


def handle_errors(func):
    """Turn a command's errors into one line on stderr and an exit status (gpt_tui/errors.py).

    The command group does the same around every command; this also covers a command function
    called on its own."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except TYPER_EXITS:
            raise
        except BaseException as exc:  # noqa: BLE001
            if _debug:
                raise
            raise typer.Exit(report(exc)) from None

    return wrapper


# -- helpers -----------------------------------------------------------------------------------------


STDIN_LIMIT = 256 * 2**20  # bytes of text read from stdin at most (`yes | gpt-tui …` must end)


def read_text(text: str | None, optional: bool = False) -> str:
    """The argument, else stdin, as text. Both must be UTF-8, checked by the same function (an
    argument's undecodable bytes reach Python as escapes, which the tokenizer turns back into bytes
    and refuses). stdin is read as Python's text mode reads it: CRLF line ends become LF, and the
    one line end at the very end is dropped. optional: no text and no stdin give "" (generate).
    "-" means stdin, as in most Unix tools, even from a terminal (read until Ctrl+D)."""
    if text is not None and text != "-":
        return text
    stdin = sys.stdin
    try:
        interactive = stdin is None or stdin.isatty()
    except (ValueError, OSError):  # a closed stream
        interactive = True
    if text == "-" and (stdin is None or stdin.closed):
        raise UsageError("'-' reads the text from stdin, but stdin is closed")
    if interactive and text is None:
        if optional:
            return ""
        raise UsageError("no text given: pass it as an argument or pipe it on stdin")
    from gpt_tui.engine.tokenizer import decode_utf8

    data = stdin.buffer.read(STDIN_LIMIT + 1)
    if len(data) > STDIN_LIMIT:
        raise UsageError(f"stdin holds more than {STDIN_LIMIT // 2**20} MiB of text; give less")
    text = decode_utf8(data, "stdin").replace("\r\n", "\n")
    return text.removesuffix("\n")


def _console(stderr: bool = False):
    from gpt_tui.fastcli import make_console

    return make_console(stderr=stderr, highlight=False)


def _open(model, device, dtype):
    from gpt_tui.engine import hub
    from gpt_tui.engine.session import Session

    model = model if model is not None else _before_command.get("model")
    device = device if device != "auto" else _before_command.get("device", "auto")
    dtype = dtype if dtype != "auto" else _before_command.get("dtype", "auto")
    spec = _model_spec(model)
    if not _on_terminal(sys.stderr):
        return Session.open(spec, device=device, dtype=dtype)
    with hub.reporting(hub.stderr_reporter(sys.stderr)):  # a download shows its progress
        return Session.open(spec, device=device, dtype=dtype)


def _model_spec(model: str | None) -> str | None:
    """--model with --revision folded in ("owner/name@revision")."""
    from gpt_tui.engine.hub import with_revision

    from pathlib import Path

    if _revision and (model is None or Path(model).expanduser().exists()):
        raise UsageError("--revision needs --model naming a Hugging Face Hub model, not a local path")
    return with_revision(model, _revision)


def _on_terminal(stream) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (ValueError, OSError):
        return False


def _note_dropped(dropped: int, kept: int, as_json: bool = False) -> None:
    """Say on stderr that the front of the text was cut, with --json too (where a "dropped" key also
    says it to programs; `as_json` is accepted for the callers that pass it)."""
    if dropped:
        _console(stderr=True).print(f"[yellow]note:[/] the text is longer than the context window; "
                                    f"kept the last {kept} tokens ({dropped} dropped from the front)", soft_wrap=True)


def _sampling(temperature, top_k, top_p):
    from gpt_tui.engine.sampling import SamplingParams

    try:
        return SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


# -- the interactive session ---------------------------------------------------------------------------


def _print_version(value: bool) -> None:
    if value:
        from gpt_tui import __version__

        print(f"gpt-tui {__version__}")
        raise typer.Exit(0)


@app.callback(invoke_without_command=True)
def session(
    ctx: typer.Context,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    no_mouse: Annotated[bool, typer.Option("--no-mouse", help="keyboard only; leave the mouse to the terminal")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks (anywhere on the line)")] = False,
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                          help="print the version and exit")] = False,
    theme: Annotated[Optional[str], typer.Option(
        parser=parse_theme, metavar="NAME", autocompletion=complete_theme, show_default=False,
        help="the session's colours for this run: textual-dark, nord, gruvbox, … (the theme picked in "
             "the palette, Ctrl+P, is remembered)")] = None,
    revision: Annotated[Optional[str], typer.Option(
        "--revision", help="with a Hub --model: the branch, tag or commit to load (as MODEL@REVISION)",
        show_default=False)] = None,
) -> None:
    """Open the interactive session when no command is given."""
    global _debug, _revision
    _debug = _debug or debug
    _revision = revision
    if ctx.invoked_subcommand is not None:
        # `gpt-tui --model X info`: options before the command are the command's defaults
        _before_command.update(model=model, device=device, dtype=dtype)
        return
    from gpt_tui.app import run

    with interruptible():  # the session handles its signals itself
        return run(model=_model_spec(model), device=device, dtype=dtype, mouse=not no_mouse, theme=theme)


# -- tokenize ---------------------------------------------------------------------------------------------


@app.command(epilog=examples(
    'gpt-tui tokenize strawberry',
    'gpt-tui tokenize "Hello world" -e cl100k_base --json',
    'cat notes.txt | gpt-tui tokenize - --ids',
))
@handle_errors
def tokenize(
    text: TextArg = None,
    encoding: Annotated[Optional[str], typer.Option("--encoding", "-e",
                        help="gpt2, cl100k_base, o200k_base… (default: the model's)")] = None,
    model: ModelOpt = None,
    ids: Annotated[bool, typer.Option("--ids", help="print only the ids")] = False,
    allow_special: SpecialOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Cut text into tokens: each token's id, text, bytes and character span."""
    from gpt_tui.fastcli import print_tokens, tokenize_pieces  # shared with the entry point's fast path

    from gpt_tui.fastcli import model_label

    text = read_text(text)
    model = model if model is not None else _before_command.get("model")
    tok, pieces = tokenize_pieces(text, encoding, model, allow_special)
    print_tokens(text, tok, pieces, ids=ids, as_json=as_json, model=model_label(encoding, model))


# -- next ---------------------------------------------------------------------------------------------------


@app.command("next", epilog=examples(
    'gpt-tui next "The capital of France is"',
    'gpt-tui next "Once upon a" -n 20 -t 0.7 -k 40 --json',
))
@handle_errors
def next_tokens(
    text: TextArg = None,
    top: Annotated[int, typer.Option("--top", "-n", min=1, help="how many candidates")] = 10,
    temperature: TempOpt = 1.0,
    top_k: TopKOpt = 0,
    top_p: TopPOpt = 1.0,
    model: ModelOpt = None, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto",
    bos: BosOpt = False, allow_special: SpecialOpt = False, as_json: JsonOpt = False,
) -> None:
    """The most likely next tokens, with logits, probabilities and what the knobs keep."""
    text = read_text(text)
    params = _sampling(temperature, top_k, top_p)
    s = _open(model, device, dtype)
    analysis = s.analyse(text, bos=bos, allow_special=allow_special, attention=False, residual=False)
    candidates = s.candidates(analysis.last_logits, params, top=top)
    kept, mass = s.survivors(analysis.last_logits, params)
    _note_dropped(analysis.dropped, analysis.n_tokens)
    if as_json:
        dump({
            "model": s.name, "n_tokens": analysis.n_tokens, "dropped": analysis.dropped,
            "temperature": temperature, "top_k": top_k, "top_p": top_p,
            "survivors": kept, "kept_mass": mass,
            "candidates": [{"id": c.id, "text": c.text, "logit": c.logit, "prob": c.prob,
                            "adjusted_prob": c.adjusted_prob, "cum_prob": c.cum_prob} for c in candidates],
        })
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold", title=f"after {analysis.n_tokens} tokens · {s.name}",
                  title_justify="left", title_style="dim")
    for col in ("#", "id", "token", "logit", "prob", "cum", "adjusted", ""):
        table.add_column(col, justify="left" if col in ("token", "") else "right")
    for rank, c in enumerate(candidates, 1):
        style = "" if c.kept else "dim strike"
        bar = "█" * round(c.adjusted_prob * 30) if c.kept else "cut"
        table.add_row(str(rank), str(c.id), repr(c.text), f"{c.logit:.3f}", f"{c.prob:.2%}", f"{c.cum_prob:.2%}",
                      f"{c.adjusted_prob:.2%}" if c.kept else "—", bar, style=style)
    console = _console()
    console.print(table)
    console.print(f"[dim]T={params.temperature:g} top-k={top_k or 'off'} top-p={top_p:g}: "
                  f"{kept:,} {'token survives' if kept == 1 else 'tokens survive'}, "
                  f"holding {mass:.2%} of the probability[/]")


# -- attention ----------------------------------------------------------------------------------------------

RAMP = " ░▒▓█"


@app.command(epilog=examples(
    'gpt-tui attention "The cat sat on the mat" -l 3 -H 1',
    'gpt-tui attention "a b a b" --json',
))
@handle_errors
def attention(
    text: TextArg = None,
    layer: Annotated[int, typer.Option("--layer", "-l", help="0-based layer")] = 0,
    head: Annotated[int, typer.Option("--head", "-H", help="0-based head")] = 0,
    model: ModelOpt = None, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto",
    bos: BosOpt = False, allow_special: SpecialOpt = False, as_json: JsonOpt = False,
) -> None:
    """One attention head's weights: rows are query tokens, columns the keys they look at."""
    text = read_text(text)
    s = _open(model, device, dtype)
    cfg = s.config
    if not 0 <= layer < cfg.n_layer:
        raise UsageError(f"--layer {layer}: this model has {cfg.n_layer} layers (0–{cfg.n_layer - 1})")
    if not 0 <= head < cfg.n_head:
        raise UsageError(f"--head {head}: this model has {cfg.n_head} heads per layer (0–{cfg.n_head - 1})")
    analysis = s.analyse(text, bos=bos, allow_special=allow_special, residual=False)
    weights = analysis.attention[layer, head]  # (T, T)
    window = analysis.attention.window(layer)  # keys further back than this are masked too
    # gpt-oss: what each query's weights on the tokens leave to the head's sink logit
    sinks = (1.0 - weights.sum(-1).astype(float)).clip(0, 1).tolist() if analysis.attention.has_sinks(layer) else None
    _note_dropped(analysis.dropped, analysis.n_tokens)
    if as_json:
        dump({"model": s.name, "layer": layer, "head": head, "dropped": analysis.dropped,
               "tokens": [{"id": p.id, "text": p.text} for p in analysis.pieces],
               "weights": weights.astype(float).tolist(), "window": window,
               **({"sink": sinks} if sinks is not None else {})})
        return
    from rich.table import Table

    labels = [show(p.text) for p in analysis.pieces]
    width = max(len(x) for x in labels)
    console = _console()
    masked = "future" + (f" or outside the layer's window of {window:,}" if window else "")
    console.print(f"[bold]layer {layer}, head {head}[/] [dim]· rows = queries, columns = keys, "
                  f"'{RAMP}' by weight, · = masked {masked}"
                  + (" · last column: the sink's share (on no token)" if sinks else "") + "[/]")

    def glyphs(weight: float) -> str:
        return RAMP[min(len(RAMP) - 1, int(weight * len(RAMP)))] * 2

    for q, label in enumerate(labels):
        cells = "".join(glyphs(weights[q, k]) if k <= q and not (window and k <= q - window) else " ·"
                        for k in range(len(labels)))
        console.print(f"{label:>{width}} {cells}" + (f" │{glyphs(sinks[q])}" if sinks else ""))
    table = Table(box=None, header_style="bold", title="strongest keys per query", title_justify="left")
    table.add_column("query")
    table.add_column("attends to")
    if sinks:
        table.add_column("sink", justify="right")
    for q, label in enumerate(labels):
        top = analysis.attended(layer, head, q, top=3)
        table.add_row(label, "  ".join(f"{labels[k]} {w:.1%}" for k, w in top), *([f"{sinks[q]:.1%}"] if sinks else []))
    console.print(table)


# -- neighbours ---------------------------------------------------------------------------------------------


def _print_neighbours(result, title: str) -> None:
    from rich.table import Table

    console = _console()
    table = Table(box=None, header_style="bold", title=title, title_justify="left")
    for col in ("#", "id", "token", "cosine ⟂ common" if result.without_common else "cosine", ""):
        table.add_column(col, justify="left" if col in ("token", "") else "right")
    for rank, n in enumerate(result.neighbours, 1):
        table.add_row(str(rank), str(n.id), repr(n.text), f"{n.cosine:.3f}", "█" * max(0, round(n.cosine * 20)))
    console.print(table)
    if result.rare:
        console.print("[yellow]note:[/] the query token was rare in training; its vector means little")
    if result.mostly_shared and not result.without_common:
        console.print(f"[dim]the query has cosine {result.shared:.2f} with the direction all rows share, so these "
                      "rank tokens mostly by how much of it they carry; --without-common compares the rest[/]")
    if result.min_count:
        console.print(f"[dim]searched {result.searched:,} tokens seen at least {result.min_count} times in training[/]")


def _neighbours(token, token_id, top, without_common, model, device, dtype, as_json):
    s = _open(model, device, dtype)
    if token_id is None:
        if token is None:
            raise UsageError("give a TOKEN (e.g. ' king' or king) or --id")
        token_id = s.word_token(token)
    result = s.neighbours(token_id, top=top, without_common=without_common)
    if as_json:
        dump({"model": s.name, "token": {"id": token_id, "text": s.tokenizer.token_text(token_id)},
               "rare": result.rare, "min_count": result.min_count, "without_common": result.without_common,
               "common_cosine": result.shared,
               "neighbours": [{"id": n.id, "text": n.text, "cosine": n.cosine} for n in result.neighbours]})
        return
    _print_neighbours(result, f"nearest to {result.query} (id {token_id}) in {result.space} · {s.name}")


NeighbourToken = Annotated[Optional[str], typer.Argument(help="one token; a bare word is also tried with its leading space")]
IdOpt = Annotated[Optional[int], typer.Option("--id", help="the token id instead of its text")]
TopNOpt = Annotated[int, typer.Option("--top", "-n", min=1)]
WithoutCommonOpt = Annotated[bool, typer.Option(
    "--without-common", help="project out the direction every row shares (the mean row's), which tracks how "
                             "common a token is, and compare what is left")]


@app.command(epilog=examples(
    'gpt-tui neighbours king',
    "gpt-tui neighbours ' jump' -n 20 --json",
    'gpt-tui neighbours leap --without-common',
    'gpt-tui neighbours --id 314',
))
@handle_errors
def neighbours(token: NeighbourToken = None, token_id: IdOpt = None, top: TopNOpt = 10,
               without_common: WithoutCommonOpt = False,
               model: ModelOpt = None, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto",
               as_json: JsonOpt = False) -> None:
    """Nearest tokens to a token in the embedding matrix W_E, by cosine similarity."""
    _neighbours(token, token_id, top, without_common, model, device, dtype, as_json)


@app.command("neighbors", hidden=True, epilog=examples(
    'gpt-tui neighbors king',
))
@handle_errors
def neighbors(token: NeighbourToken = None, token_id: IdOpt = None, top: TopNOpt = 10,
              without_common: WithoutCommonOpt = False,
              model: ModelOpt = None, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto",
              as_json: JsonOpt = False) -> None:
    """Alias of neighbours."""
    _neighbours(token, token_id, top, without_common, model, device, dtype, as_json)


@app.command(epilog=examples(
    'gpt-tui analogy king man woman',
    'gpt-tui analogy Paris France Italy -n 5 --json',
))
@handle_errors
def analogy(a: str, b: str, c: str, top: TopNOpt = 10, without_common: WithoutCommonOpt = False,
            model: ModelOpt = None, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto",
            as_json: JsonOpt = False) -> None:
    """Vector arithmetic in W_E: the tokens nearest to A − B + C (king man woman → queen?)."""
    s = _open(model, device, dtype)
    result = s.analogy(a, b, c, top=top, without_common=without_common)
    if as_json:
        dump({"model": s.name, "query": result.query, "rare": result.rare, "without_common": result.without_common,
              "common_cosine": result.shared,
              "neighbours": [{"id": n.id, "text": n.text, "cosine": n.cosine} for n in result.neighbours]})
        return
    _print_neighbours(result, f"nearest to {result.query} in {result.space} · {s.name}")


# -- generate -------------------------------------------------------------------------------------------------


@app.command(epilog=examples(
    'gpt-tui generate "Once upon a time" --seed 1 --max-new-tokens 60',
    'gpt-tui generate "The" -t 0 --json',
    'echo "Dear diary," | gpt-tui generate - -m gpt2',
))
@handle_errors
def generate(
    text: TextArg = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1, help="tokens to write at most")] = 50,
    temperature: Annotated[Optional[float], typer.Option(
        "--temperature", "-t", show_default=False,
        help="0 = greedy · default: the model's generation_config.json, else 1")] = None,
    top_k: Annotated[Optional[int], typer.Option(
        "--top-k", "-k", show_default=False,
        help="0 = off · default: the model's generation_config.json, else off")] = None,
    top_p: Annotated[Optional[float], typer.Option(
        "--top-p", "-p", show_default=False,
        help="1 = off · default: the model's generation_config.json, else off")] = None,
    seed: SeedOpt = None,
    stop_at_eot: Annotated[bool, typer.Option(help="stop at <|endoftext|>")] = True,
    model: ModelOpt = None, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto",
    bos: BosOpt = False, allow_special: SpecialOpt = False, as_json: JsonOpt = False,
) -> None:
    """Continue the text token by token (KV cache), streamed; each token's probability with --json.

    Knobs not given come from the model's generation_config.json (the bundled model ships one),
    else T=1 with no cuts, the raw distribution.
    """
    text = read_text(text, optional=True)
    given = [name for name, value in (("temperature", temperature), ("top_k", top_k), ("top_p", top_p))
             if value is not None]
    if given:
        _sampling(*(1.0 if temperature is None else temperature, top_k or 0,
                    1.0 if top_p is None else top_p))  # bad knobs fail before the model loads
    s = _open(model, device, dtype)
    defaults = s.default_sampling
    temperature = defaults.temperature if temperature is None else temperature
    top_k = defaults.top_k if top_k is None else top_k
    top_p = defaults.top_p if top_p is None else top_p
    params = _sampling(temperature, top_k, top_p)
    if seed is None:
        seed = s.new_seed()
    enc = s.encode(text, bos=bos or not text, allow_special=allow_special, reserve=1)
    tokens = []
    console = _console()
    stream = not as_json
    _note_dropped(enc.dropped, len(enc.ids))
    if stream:
        console.print(text, style="dim", end="")
    stopped = None
    # Tokens can end inside a character (half of “ or of an emoji): print whole characters only.
    utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
    try:
        with interruptible():  # Ctrl+C stops the generation and keeps what it wrote
            for step in s.generate(enc.ids, params, max_new_tokens, seed=seed, stop_at_eot=stop_at_eot):
                tokens.append(step)
                if stream:
                    piece = "<|endoftext|>" if step.id == s.tokenizer.eot_id else utf8.decode(step.bytes)
                    console.print(piece, style=_prob_style(step.prob), end="", markup=False)
    except KeyboardInterrupt:
        stopped = "interrupted"
    completion = s.tokenizer.decode([t.id for t in tokens if t.id != s.tokenizer.eot_id])
    from_model = s.loaded.generation.from_model and len(given) < 3  # some knob came from the file
    knobs_note = (" (the model's defaults)" if not given else " (partly the model's defaults)") if from_model else ""
    if as_json:
        result = {"model": s.name, "prompt": text, "dropped": enc.dropped, "completion": completion, "seed": seed,
                  "temperature": temperature, "top_k": top_k, "top_p": top_p,
                  "defaults_from": s.loaded.generation.source if from_model else None,
                  "given": given,
                  "tokens": [{"id": t.id, "text": t.text, "prob": t.prob} for t in tokens]}
        if stopped:
            result["stopped"] = stopped
        dump(result)
    else:
        console.print(utf8.decode(b"", final=True), end="", markup=False)  # an unfinished character
        console.print()
        err = _console(stderr=True)
        err.print(f"[dim]{len(tokens)} tokens · seed {seed} · T={temperature:g} top-k={top_k or 'off'} "
                  f"top-p={top_p:g}{knobs_note}{' · interrupted' if stopped else ''}[/]")
    if stopped:
        raise typer.Exit(130)


def _prob_style(prob: float) -> str:
    """Shade a generated token by the probability it had: confident bright, surprising dim."""
    if prob >= 0.5:
        return "bold"
    if prob >= 0.1:
        return ""
    return "dim"


# -- score ------------------------------------------------------------------------------------------------------


@app.command(epilog=examples(
    'gpt-tui score "The cat sat on the mat"',
    'gpt-tui score - --json < essay.txt',
))
@handle_errors
def score(
    text: TextArg = None,
    model: ModelOpt = None, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto",
    bos: BosOpt = False, allow_special: SpecialOpt = False, as_json: JsonOpt = False,
) -> None:
    """How surprised the model is by each token, given the ones before it (log-probabilities)."""
    text = read_text(text)
    s = _open(model, device, dtype)
    tokens, analysis = s.score(text, bos=bos, allow_special=allow_special)
    _note_dropped(analysis.dropped, analysis.n_tokens)
    scored = [t.logprob for t in tokens if t.logprob is not None]
    mean = sum(scored) / len(scored) if scored else None
    perplexity = math.exp(-mean) if mean is not None else None
    if as_json:
        dump({"model": s.name, "dropped": analysis.dropped,
               "tokens": [{"id": t.id, "text": t.text, "logprob": t.logprob} for t in tokens],
               "mean_logprob": mean, "perplexity": perplexity})
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for col in ("#", "id", "token", "logprob", "prob", ""):
        table.add_column(col, justify="left" if col in ("token", "") else "right")
    for i, t in enumerate(tokens):
        if t.logprob is None:
            table.add_row(str(i), str(t.id), repr(t.text), "—", "—", "[dim](nothing before it)[/]")
        else:
            p = math.exp(t.logprob)
            table.add_row(str(i), str(t.id), repr(t.text), f"{t.logprob:.3f}", f"{p:.2%}",
                          "█" * round(min(1.0, -t.logprob / 15) * 20))
    console = _console()
    console.print(table)
    if mean is None:
        console.print("[dim]a single token: nothing to score (use --bos to score it after <|endoftext|>)[/]")
    else:
        console.print(f"mean log-prob {mean:.4f} nats/token · perplexity {perplexity:.2f}")


# -- info --------------------------------------------------------------------------------------------------------


@app.command(epilog=examples(
    'gpt-tui info',
    'gpt-tui info -m gpt2 --device cuda --dtype bfloat16 --json',
))
@handle_errors
def info(model: ModelOpt = None, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto",
         as_json: JsonOpt = False) -> None:
    """The model card: architecture, parameters per matrix, device, dtype and memory."""
    s = _open(model, device, dtype)
    data = s.info()
    meta = s.loaded.meta
    if meta.get("description"):
        data["description"] = meta["description"]
    if as_json:
        dump(data)
        return
    from rich.table import Table

    console = _console()
    console.print(f"[bold]{data['model']}[/] [dim]({data['source']})[/]")
    if data.get("description"):
        console.print(data["description"])
    console.print(f"{data['n_layer']} layers · {data['n_head']} heads of {data['head_dim']} · d_model {data['n_embd']}"
                  f" · context {data['n_ctx']} · vocabulary {data['vocab_size']:,} ({data['tokenizer']})")
    table = Table(box=None, header_style="bold")
    for col in ("matrix", "counted as", "× layers"):
        table.add_column(col, justify="left" if col != "× layers" else "right")
    for m in data["matrices"]:
        table.add_row(m["name"], m["formula"], f"{m['total']:,}")
    console.print(table)
    for note in data["notes"]:
        console.print(f"[dim]·[/] {note}", soft_wrap=True)
    console.print(f"total {data['parameters']:,} parameters · {data['device']} · {data['dtype']} · "
                  f"{data['weight_bytes'] / 2**20:,.1f} MiB of weights · KV cache "
                  f"{data['kv_cache_bytes_per_token'] / 2**10:,.1f} KiB per token")


# -- train ---------------------------------------------------------------------------------------------------------

TRAIN_PRECISION = {"auto": "auto", "float32": "fp32", "bfloat16": "bf16"}  # --dtype -> TrainConfig.precision


@app.command(epilog=examples(
    'gpt-tui train --corpus data/corpus --minutes 30',
    'gpt-tui train --tokens 5000000 --dtype bfloat16 --out runs/small',
))
@handle_errors
def train(
    corpus: Annotated[str, typer.Option(help="directory with train.txt and val.txt")] = "data/corpus",
    out: Annotated[str, typer.Option(help="output directory (resumes if it holds a checkpoint)")] = "runs/model",
    minutes: Annotated[Optional[float], typer.Option(help="time budget")] = None,
    tokens: Annotated[Optional[int], typer.Option(help="token budget (reproducible on a shared machine)")] = None,
    n_layer: int = 6, n_head: int = 6, n_embd: int = 384, n_ctx: int = 256, dropout: float = 0.0,
    batch_size: int = 16, lr: float = 1.5e-3, warmup_steps: int = 200,
    repeat_fraction: Annotated[float, typer.Option(
        help="share of training windows given a repeated span, to teach in-context copying")] = 0.0,
    random_fraction: Annotated[float, typer.Option(
        help="share of the repeated spans made of random corpus tokens (only copying predicts them)")] = 0.0,
    max_span: Annotated[int, typer.Option(help="longest repeated span in tokens (16 up; at most half the context)")] = 64,
    echo_fraction: Annotated[float, typer.Option(
        help="share of training windows that are one random passage repeated end to end (copying, densely)")] = 0.0,
    gate_rare: Annotated[int, typer.Option(
        help="tokens seen fewer times than this: their rows get no softmax push-down (keeps rare rows apart)")] = 0,
    average: Annotated[float, typer.Option(
        help="keep a running average of the weights with this decay (e.g. 0.995) and export it, not the last step")] = 0.0,
    compact: Annotated[bool, typer.Option(help="embed only the token ids the corpus uses")] = True,
    init_from: Annotated[Optional[str], typer.Option(
        help="start from this gpt-tui model directory (same layers, heads, width and context)")] = None,
    eval_every: Annotated[float, typer.Option(help="minutes between validation runs")] = 5.0,
    seed: int = 1337,
    device: DeviceOpt = "auto",
    dtype: Annotated[str, typer.Option(parser=choice(("auto", "float32", "bfloat16")),
                                       metavar="[auto|float32|bfloat16]",
                                       help="autocast precision; auto measures which is faster here")] = "auto",
    precision: Annotated[Optional[str], typer.Option(hidden=True, help="the old name of --dtype: fp32 | bf16")] = None,
    threads: Annotated[Optional[int], typer.Option(help="CPU threads for PyTorch")] = None,
) -> None:
    """Train a GPT-2-architecture model on a text corpus (Ctrl+C saves; run again to resume)."""
    from gpt_tui.training.run import run_training
    from gpt_tui.training.train import TrainConfig

    try:  # TrainConfig checks every knob, once
        cfg = TrainConfig(corpus=corpus, out=out, n_layer=n_layer, n_head=n_head, n_embd=n_embd, n_ctx=n_ctx,
                          dropout=dropout, compact=compact, batch_size=batch_size, lr=lr, warmup_steps=warmup_steps,
                          repeat_fraction=repeat_fraction, random_fraction=random_fraction, max_span=max_span, echo_fraction=echo_fraction,
                          gate_rare=gate_rare, average=average, init_from=init_from, minutes=minutes, tokens=tokens, eval_every_minutes=eval_every, seed=seed, device=device,
                          precision=precision or TRAIN_PRECISION[dtype.lower()], threads=threads)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    with interruptible(), kill_as_ctrl_c():  # Ctrl+C, or a plain `kill`, saves a checkpoint
        run_training(cfg)


# The views inside the layers (lens, stages, compare, positions, chat) register on `app` there.
from gpt_tui import cli_layers, cli_serve  # noqa: E402,F401


def main() -> int:
    return app(standalone_mode=False)
