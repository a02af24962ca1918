"""CLI commands for what happens inside the layers: `lens`, `stages`, `compare`, `positions`, `chat`.

They register on the same Typer app as the rest (gpt_tui/cli.py imports this module) and follow its
conventions: text from the argument or stdin, Rich output for people and one JSON object with
--json, one-line errors and the same exit codes. Depth 0 is the embedding, depth l + 1 the residual
after block l; block indices are 0-based as everywhere else.
"""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from gpt_tui.cli import (BosOpt, DeviceOpt, DtypeOpt, JsonOpt, ModelOpt, SpecialOpt, TempOpt, TextArg,
                         TopKOpt, TopPOpt, UsageError, _console, _note_dropped, _open, _sampling, app, handle_errors,
                         read_text)
from gpt_tui.cli_options import examples
from gpt_tui.fastcli import dump, show

PositionOpt = Annotated[Optional[int], typer.Option("--position", "-P",
                        help="0-based token position (negative counts from the end); default: the last token")]
LensTopOpt = Annotated[int, typer.Option("--top", "-n", min=1, max=100, help="top tokens per depth")]
BAR = 20


def _position(analysis, position: int | None) -> int:
    T = analysis.n_tokens
    if position is None:
        return T - 1
    if not -T <= position < T:
        raise UsageError(f"--position {position}: the text has {T} tokens (0–{T - 1}, or -1 for the last)")
    return position % T


def _tops(tok, entry) -> list[dict]:
    return [{"id": int(i), "text": tok.token_text(int(i)), "prob": float(p)}
            for i, p in zip(entry.top_ids, entry.top_probs)]


def _lens_entry(tok, entry) -> dict:
    return {"layer": entry.depth, "name": entry.name, "top": _tops(tok, entry), "entropy": entry.entropy,
            "final_token_rank": entry.final_token_rank, "final_token_prob": entry.final_token_prob}


LISTINGS = ("top predictions", "A predicts", "B predicts")
NUMERIC = ("depth", "rank", "entropy", "p(final)", "cosine", "|attn|", "|mlp|", "attn →", "mlp →", "|resid|", "layer")


def _table(*columns: str, title: str | None = None, room: int = 0):
    """A borderless table. Token lists share `room` columns and are cut with … rather than wrapped
    (--json has them whole); the short columns never shrink."""
    from rich.table import Table

    table = Table(box=None, header_style="bold", title=title, title_justify="left", title_style="dim")
    listings = [c for c in columns if c in LISTINGS]
    for col in columns:
        if col in LISTINGS:
            width = max(12, room // len(listings)) if room else None
            table.add_column(col, no_wrap=True, overflow="ellipsis", max_width=width)
        else:
            table.add_column(col, justify="right" if col in NUMERIC else "left", no_wrap=True,
                             min_width=len(col))
    return table


def _room(used: int) -> int:
    """Columns of the terminal left for token lists once `used` are taken."""
    return max(24, _console().width - used)


# -- lens ---------------------------------------------------------------------------------------------------


@app.command(epilog=examples(
    'gpt-tui lens "The Eiffel Tower is in the city of"',
    'gpt-tui lens "one two three four" -P 2 --mid --json',
))
@handle_errors
def lens(
    text: TextArg = None,
    position: PositionOpt = None,
    top: LensTopOpt = 5,
    mid: Annotated[bool, typer.Option("--mid", help="also read the residual after each block's attention "
                                                    "(under \"mid\" in the JSON)")] = False,
    model: ModelOpt = None, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto",
    bos: BosOpt = False, allow_special: SpecialOpt = False, as_json: JsonOpt = False,
) -> None:
    """The logit lens: what the model would predict after one position if it stopped after each block."""
    text = read_text(text)
    s = _open(model, device, dtype)
    analysis = s.analyse(text, bos=bos, allow_special=allow_special, attention=False)
    pos = _position(analysis, position)
    result = analysis.lens(pos, top=top, mid=mid)
    tok = s.tokenizer
    if as_json:
        out = {"model": s.name, "position": pos, "n_tokens": analysis.n_tokens, "dropped": analysis.dropped,
               "token": {"id": result.token_id, "text": tok.token_text(result.token_id)},
               "final_token": {"id": result.final_token, "text": tok.token_text(result.final_token)},
               "layers": [_lens_entry(tok, e) for e in result.layers]}
        if mid:
            out["mid"] = [_lens_entry(tok, e) for e in result.mid]
        dump(out)
        return
    _note_dropped(analysis.dropped, s.n_ctx, as_json)
    final = repr(tok.token_text(result.final_token))
    table = _table("depth", "stage", "top predictions", "entropy", "rank", "p(final)", "", room=_room(52),
                   title=f"after {show(tok.token_text(result.token_id))} (position {pos}) · the final top-1 is "
                         f"{final} · {s.name}")
    # a mid entry of block l (after its attention) sits between depth l and depth l + 1
    entries = sorted([*result.layers, *result.mid], key=lambda e: e.depth + (0.5 if e in result.mid else 0))
    for e in entries:
        tops = "  ".join(f"{tok.token_text(int(i))!r} {p:.1%}" for i, p in zip(e.top_ids, e.top_probs))
        bar = "█" * round(e.final_token_prob * BAR)
        table.add_row("" if "attn" in e.name else str(e.depth), e.name, tops, f"{e.entropy:.2f}",
                      str(e.final_token_rank), f"{e.final_token_prob:.1%}", bar,
                      style="dim" if "attn" in e.name else ("bold" if e.final_token_rank == 1 else ""))
    console = _console()
    console.print(table)
    console.print("[dim]each depth's residual through the model's own final LayerNorm and unembedding; entropy in "
                  f"nats; rank and p of the final top-1 {final} at that depth[/]")


# -- stages -------------------------------------------------------------------------------------------------

DIRECT_LOGIT_NOTE = ("linearised direct effect on the final top token's logit: each part centred, divided by the "
                     "final LayerNorm's scale at this position, times its gain, dotted with the token's unembedding "
                     "row; embed + Σ blocks + bias_logit = the logit")


@app.command(epilog=examples(
    'gpt-tui stages "The cat sat on the"',
    'gpt-tui stages "Hello world" -P 0 --json',
))
@handle_errors
def stages(
    text: TextArg = None,
    position: PositionOpt = None,
    model: ModelOpt = None, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto",
    bos: BosOpt = False, allow_special: SpecialOpt = False, as_json: JsonOpt = False,
) -> None:
    """The four stages of one token: embedding -> attention and MLP of each block -> unembedding -> softmax."""
    text = read_text(text)
    s = _open(model, device, dtype)
    analysis = s.analyse(text, bos=bos, allow_special=allow_special, attention=False)
    pos = _position(analysis, position)
    st = analysis.stages(pos)
    tok = s.tokenizer
    if as_json:
        dump({"model": s.name, "position": pos, "token": {"id": st.token_id, "text": tok.token_text(st.token_id)},
              "embed": {"token_norm": st.token_norm, "position_norm": st.position_norm, "norm": st.embed_norm,
                        "direct_logit": st.embed_direct_logit},
              "blocks": [{"layer": b.layer, "attn_norm": b.attn_norm, "mlp_norm": b.mlp_norm,
                          "attn_direct_logit": b.attn_direct_logit, "mlp_direct_logit": b.mlp_direct_logit,
                          "resid_norm": b.resid_norm} for b in st.blocks],
              "final_norm": st.final_norm, "bias_logit": st.bias_logit,
              "final_token": {"id": st.final_token, "text": tok.token_text(st.final_token), "logit": st.final_logit,
                              "prob": st.final_prob},
              "direct_logit": DIRECT_LOGIT_NOTE})
        return
    _note_dropped(analysis.dropped, s.n_ctx, as_json)
    console = _console()
    final = repr(tok.token_text(st.final_token))
    console.print(f"[bold]{tok.token_text(st.token_id)!r}[/] at position {pos} · {s.name}")
    pos_part = "no position table" if st.position_norm is None else f"position {pos} |W_pos| {st.position_norm:.3f}"
    console.print(f"1. embedding: token |W_E| {st.token_norm:.3f} + {pos_part} → |x| {st.embed_norm:.3f} "
                  f"(direct → {final}: {st.embed_direct_logit:+.3f})")
    table = _table("layer", "|attn|", "attn →", "|mlp|", "mlp →", "|resid|",
                   title=f"2–3. each block adds its attention output, then its MLP output (→ = direct effect on "
                         f"the logit of {final})")
    for b in st.blocks:
        table.add_row(str(b.layer), f"{b.attn_norm:.3f}", f"{b.attn_direct_logit:+.3f}", f"{b.mlp_norm:.3f}",
                      f"{b.mlp_direct_logit:+.3f}", f"{b.resid_norm:.3f}")
    console.print(table)
    console.print(f"4. final residual |x| {st.final_norm:.3f} → final LayerNorm (its bias adds {st.bias_logit:+.3f}) "
                  f"→ unembedding: logit of {final} {st.final_logit:.3f} → softmax: {st.final_prob:.2%}")
    console.print(f"[dim]→: {DIRECT_LOGIT_NOTE}[/]")


# -- compare ------------------------------------------------------------------------------------------------


@app.command(epilog=examples(
    'gpt-tui compare "river bank" "bank account" -w bank',
    'gpt-tui compare "I saw a bat fly" "he swung the bat" -w bat --json',
))
@handle_errors
def compare(
    text_a: Annotated[str, typer.Argument(help="the first text")],
    text_b: Annotated[str, typer.Argument(help="the second text")],
    word: Annotated[Optional[str], typer.Option("--word", "-w", help="the word to follow (its last occurrence "
                                                "in each text); default: the last token of each")] = None,
    top: LensTopOpt = 3,
    model: ModelOpt = None, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto",
    allow_special: SpecialOpt = False, as_json: JsonOpt = False,
) -> None:
    """Context changes meaning: the same word in two texts, followed through the layers."""
    s = _open(model, device, dtype)
    result, a, b = s.compare(text_a, text_b, word=word, top=top, allow_special=allow_special)
    tok = s.tokenizer
    side = {"a": (a, result.position_a, result.token_a), "b": (b, result.position_b, result.token_b)}
    if as_json:
        dump({"model": s.name, "word": tok.token_text(result.token_a) if word is None else word,
              **{k: {"text": an.text, "position": p, "token": {"id": t, "text": tok.token_text(t)}}
                 for k, (an, p, t) in side.items()},
              "token_cosine": result.token_cosine,
              "layers": [{"layer": l.depth, "name": l.name, "cosine": l.cosine, "a_top": _tops(tok, l.a),
                          "b_top": _tops(tok, l.b)} for l in result.layers]})
        return
    for an in (a, b):
        _note_dropped(an.dropped, s.n_ctx, as_json)
    console = _console()
    for k, (an, p, t) in side.items():
        console.print(f"{k.upper()}: {an.text!r} · {tok.token_text(t)!r} at position {p}")
    same = "the same token" if result.token_a == result.token_b else "different tokens"
    table = _table("depth", "stage", "cosine", "", "A predicts", "B predicts", room=_room(42),
                   title=f"cosine of the two residual vectors at each depth (embed = token + position) · "
                         f"token embeddings alone: {result.token_cosine:.3f} ({same}) · {s.name}")
    for l in result.layers:
        bar = "█" * max(0, round(l.cosine * 8))
        fmt = lambda e: "  ".join(f"{tok.token_text(int(i))!r} {p:.0%}" for i, p in zip(e.top_ids, e.top_probs))
        table.add_row(str(l.depth), l.name, f"{l.cosine:.3f}", bar, fmt(l.a), fmt(l.b))
    console.print(table)


# -- positions ----------------------------------------------------------------------------------------------


@app.command(epilog=examples(
    'gpt-tui positions',
    'gpt-tui positions -m gpt2 --json',
))
@handle_errors
def positions(
    model: ModelOpt = None, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto",
    as_json: JsonOpt = False,
) -> None:
    """The position table W_pos beside the original Transformer's sinusoids: norms and neighbour cosines."""
    from gpt_tui.engine.positions import PositionTable, sinusoidal

    s = _open(model, device, dtype)
    table = s.position_table()
    if table.kind == "none":
        if as_json:
            dump({"model": s.name, "kind": "none", "n_positions": s.n_ctx, "d_model": s.config.n_embd,
                  "norms": [], "neighbour_cosine": []})
        else:
            _console().print(f"{s.name} has no position table: positions enter inside attention instead")
        return
    sine = PositionTable("sinusoidal", sinusoidal(table.n_positions, table.d_model))
    if as_json:
        dump({"model": s.name, "kind": table.kind, "n_positions": table.n_positions, "d_model": table.d_model,
              "norms": table.norms.tolist(), "neighbour_cosine": table.neighbour_cosine.tolist(),
              "sinusoidal": {"norms": sine.norms.tolist(), "neighbour_cosine": sine.neighbour_cosine.tolist()}})
        return
    from gpt_tui.engine.positions import evenly_spaced

    console = _console()
    console.print(f"[bold]W_pos[/] of {s.name}: {table.n_positions} positions × {table.d_model} dimensions, "
                  "learned — beside the sinusoidal encoding of the same size")
    rows = _table("position", "|W_pos|", "cos(p, p+1)", "|sinusoid|", "cos(p, p+1) sinusoid")
    norms, near, snorms, snear = table.norms, table.neighbour_cosine, sine.norms, sine.neighbour_cosine
    for p in evenly_spaced(table.n_positions, 16):
        nb = f"{near[p]:.3f}" if p < len(near) else "—"
        sb = f"{snear[p]:.3f}" if p < len(snear) else "—"
        rows.add_row(str(p), f"{norms[p]:.3f}", nb, f"{snorms[p]:.3f}", sb)
    console.print(rows)
    console.print(f"[dim]16 of {table.n_positions} positions, evenly spaced; --json has all of them[/]")


# -- chat ---------------------------------------------------------------------------------------------------


@app.command(epilog=examples(
    "gpt-tui chat 'user: What is a token?'",
    "gpt-tui chat -s 'Be brief.' 'user: Hi' --max-new-tokens 30 --seed 1",
    'echo \'[{"role": "user", "content": "Hi"}]\' | gpt-tui chat -',
))
@handle_errors
def chat(
    turns: Annotated[Optional[list[str]], typer.Argument(help="turns as 'ROLE: TEXT' (system, user, assistant); "
                                                              "without them, a JSON list of {role, content} on stdin",
                                                         show_default=False)] = None,
    system: Annotated[Optional[str], typer.Option("--system", "-s", help="the system text (first turn)")] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=0,
                                                help="tokens of the assistant's reply to write (0: only show "
                                                     "the document)")] = 40,
    temperature: TempOpt = 1.0, top_k: TopKOpt = 0, top_p: TopPOpt = 1.0,
    seed: Annotated[Optional[int], typer.Option(min=0, max=2**64 - 1,
                    help="same seed, same reply (random when omitted, and printed)")] = None,
    model: ModelOpt = None, device: DeviceOpt = "auto", dtype: DtypeOpt = "auto",
    as_json: JsonOpt = False,
) -> None:
    """Chat as one document: the turns written out as the single text the model continues, and its reply."""
    from gpt_tui.engine.chat import ChatError, Turn, parse_turn, turns_from_json

    try:
        if turns and turns != ["-"]:
            parsed = [parse_turn(t) for t in turns]
        else:
            if not turns and (sys.stdin is None or sys.stdin.isatty()):
                raise UsageError("give turns like 'user: Hello' or pipe a JSON list of {role, content} on stdin")
            parsed = turns_from_json(read_text(None))
        if system is not None:
            parsed = [Turn("system", system), *parsed]
    except ChatError as exc:
        raise UsageError(str(exc)) from None
    params = _sampling(temperature, top_k, top_p)
    s = _open(model, device, dtype)
    document = s.chat_document(parsed)
    ids = s.encode_document(document)
    if len(ids) + max_new_tokens > s.n_ctx:
        keep = max(1, s.n_ctx - max_new_tokens)
        _note_dropped(len(ids) - keep, s.n_ctx, as_json)
        ids = ids[-keep:]
    if seed is None:
        seed = s.new_seed()
    reply_ids, reply = [], ""
    stopped_by = None
    for step in s.generate(ids, params, max_new_tokens, seed=seed, stop_at_eot=True):
        if step.id == s.tokenizer.eot_id:
            stopped_by = "<|endoftext|>"
            break
        reply_ids.append(step.id)
        reply = s.tokenizer.decode(reply_ids)
        cut = min((reply.find(stop) for stop in document.stop if stop in reply), default=-1)
        if cut >= 0:
            reply, stopped_by = reply[:cut], "next turn"
            break
    if as_json:
        dump({"model": s.name, "format": document.format, "document": document.text, "n_tokens": len(ids),
              "special": [{"start": sp.start, "end": sp.end, "text": sp.text} for sp in document.special],
              "turns": [{"role": role, "start": sp.start, "end": sp.end} for role, sp in document.turns],
              "reply": reply if max_new_tokens else None, "stopped_by": stopped_by, "seed": seed,
              "temperature": temperature, "top_k": top_k, "top_p": top_p})
        return
    from rich.text import Text

    console = _console()
    shown = Text()
    cursor = 0
    for sp in document.special:
        shown.append(document.text[cursor:sp.start])
        shown.append(sp.text, style="reverse bold")
        cursor = sp.end
    shown.append(document.text[cursor:])
    console.print(f"[dim]the document the model continues ({document.format} framing, {len(ids)} tokens; "
                  "special tokens reversed):[/]")
    console.print(shown, soft_wrap=True, end="")
    if max_new_tokens:
        console.print(reply, style="bold green", markup=False, soft_wrap=True, end="")
    console.print()
    if max_new_tokens:
        _console(stderr=True).print(f"[dim]{len(reply_ids)} tokens · seed {seed} · stopped by "
                                    f"{stopped_by or 'the token limit'}[/]")
