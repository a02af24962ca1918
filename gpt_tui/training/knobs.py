"""Choose a model's default sampling knobs by measuring what they produce.

Two cheap, honest proxies, computed on continuations of a fixed set of prompts:

* **real words**: the share of generated words (runs of letters) that occur at least twice in
  the training text. Invented words ("latchation", "notails") fail it; names the model copies
  from its corpus pass.
* **repetition**: the share of word 4-grams in a continuation that already occurred earlier in
  the same text (prompt included): the loops low temperatures fall into.

The held-out text itself is measured the same way, as the yardstick. The chosen knobs are the
ones with the most real words among those that repeat themselves no more than REPETITION_LIMIT.
Run ``python -m gpt_tui.training.knobs MODEL_DIR --corpus DIR --write`` to measure and write
generation_config.json (and knobs.json, the measurement, which the model card shows).
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

from gpt_tui.engine.generation_config import write_generation_config
from gpt_tui.engine.sampling import SamplingParams

PROMPTS = (
    "The most effective way to learn computer science is",
    "Once upon a time",
    "The cat sat on the mat",
    "In the morning the children",
    "A model is",
    "The king said",
    "She opened the door and",
    "Python is a programming language that",
    "It is a truth universally acknowledged",
    "When the students",
    "He tried to jump over",
    "The scientist looked at the results and",
)
SEEDS = (1, 2, 3)
NEW_TOKENS = 40
SETTINGS = (
    SamplingParams(1.0, 0, 1.0),  # the raw distribution
    SamplingParams(0.9, 40, 0.95),
    SamplingParams(0.8, 40, 0.95),
    SamplingParams(0.7, 0, 0.9),
)
REPETITION_LIMIT = 0.05
WORD = re.compile(r"[A-Za-z]+")


def lexicon(train_text: str, min_count: int = 2) -> set[str]:
    counts = Counter(w.lower() for w in WORD.findall(train_text))
    return {w for w, n in counts.items() if n >= min_count}


def real_word_share(text: str, words: set[str]) -> tuple[int, int]:
    found = [w.lower() for w in WORD.findall(text)]
    return sum(w in words for w in found), len(found)


def repeated_4grams(prompt: str, continuation: str) -> tuple[int, int]:
    """(4-grams of the continuation seen before in prompt + continuation, 4-grams in it)."""
    before = [w.lower() for w in WORD.findall(prompt)]
    after = [w.lower() for w in WORD.findall(continuation)]
    words = before + after
    seen, repeats, total = set(), 0, 0
    for i in range(len(words) - 3):
        gram = tuple(words[i : i + 4])
        if i + 3 >= len(before):  # the 4-gram ends in the continuation
            total += 1
            repeats += gram in seen
        seen.add(gram)
    return repeats, total


def measure(session, words: set[str], params: SamplingParams) -> dict:
    real = n_words = reps = n_grams = 0
    for prompt in PROMPTS:
        ids = session.encode(prompt).ids
        for seed in SEEDS:
            new = [t.id for t in session.generate(ids, params, NEW_TOKENS, seed=seed, stop_at_eot=False)]
            text = session.tokenizer.decode([i for i in new if i != session.tokenizer.eot_id])
            r, n = real_word_share(text, words)
            real, n_words = real + r, n_words + n
            r, n = repeated_4grams(prompt, text)
            reps, n_grams = reps + r, n_grams + n
    return {"temperature": params.temperature, "top_k": params.top_k, "top_p": params.top_p,
            "real_words": round(real / max(1, n_words), 4), "repetition": round(reps / max(1, n_grams), 4),
            "words": n_words}


def measure_held_out(val_text: str, words: set[str], pieces: int = 200, piece_words: int = 30) -> dict:
    """The same figures for the held-out text, cut into pieces of about a continuation's length."""
    tokens = val_text.replace("<|endoftext|>", " ").split()
    step = max(1, (len(tokens) - 2 * piece_words) // pieces)
    real = n_words = reps = n_grams = 0
    for start in range(0, step * pieces, step):
        prompt = " ".join(tokens[start : start + 8])
        text = " ".join(tokens[start + 8 : start + 8 + piece_words])
        r, n = real_word_share(text, words)
        real, n_words = real + r, n_words + n
        r, n = repeated_4grams(prompt, text)
        reps, n_grams = reps + r, n_grams + n
    return {"real_words": round(real / max(1, n_words), 4), "repetition": round(reps / max(1, n_grams), 4),
            "words": n_words}


def choose(rows: list[dict]) -> dict:
    fit = [r for r in rows if r["repetition"] <= REPETITION_LIMIT] or rows
    return max(fit, key=lambda r: r["real_words"])


def main(argv: list[str] | None = None) -> int:
    from gpt_tui.engine.session import Session

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--corpus", type=Path, required=True, help="corpus directory (train.txt, val.txt)")
    parser.add_argument("--write", action="store_true", help="write generation_config.json and knobs.json")
    args = parser.parse_args(argv)
    words = lexicon((args.corpus / "train.txt").read_text(encoding="utf-8"))
    session = Session.open(str(args.model_dir), device="cpu", dtype="float32")
    held_out = measure_held_out((args.corpus / "val.txt").read_text(encoding="utf-8"), words)
    print(f"held-out text: real words {held_out['real_words']:.1%}, repetition {held_out['repetition']:.1%}")
    rows = []
    for params in SETTINGS:
        row = measure(session, words, params)
        rows.append(row)
        print(f"T={row['temperature']:g} top-k={row['top_k'] or 'off'} top-p={row['top_p']:g}: "
              f"real words {row['real_words']:.1%}, repetition {row['repetition']:.1%}", flush=True)
    best = choose(rows)
    print(f"chosen: T={best['temperature']:g} top-k={best['top_k']} top-p={best['top_p']:g}")
    if args.write:
        params = SamplingParams(best["temperature"], best["top_k"], best["top_p"])
        write_generation_config(args.model_dir, params)
        report = {"prompts": list(PROMPTS), "seeds": list(SEEDS), "new_tokens": NEW_TOKENS,
                  "repetition_limit": REPETITION_LIMIT, "held_out": held_out, "settings": rows,
                  "chosen": {"temperature": params.temperature, "top_k": params.top_k, "top_p": params.top_p}}
        (args.model_dir / "knobs.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
