"""Probes of what a language model has learnt, cheap enough to run during training.

In-context copying (the work of induction heads): a passage of random common words means little,
so its first copy is hard to predict; a model that can look back and copy predicts the second
copy far better. The ratio of the two perplexities measures that ability alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Everyday English words, each one GPT-2 token with its leading space.
COMMON_WORDS = """
the of and to in is was for on that with as it his he at by from had be not are this but have
they you which or were her all she one an their there been has when who will more no if out so
said what up its about into than them can only other new some could time these two may then do
first any my now such like our over man me even most made after also did many before must
through back years where much your way well down should because each just those people how too
little state good very make world still own see men work long get here between both life being
under never day same another know while last might us great old year off come since against go
came right used take three house small water hand night room part eye place find
""".split()


@dataclass(frozen=True)
class CopyingScore:
    first_perplexity: float  # of the first copy of the passages (their 2nd token onwards)
    second_perplexity: float  # of the second copy (every token)

    @property
    def ratio(self) -> float:
        return self.first_perplexity / self.second_perplexity


def repeated_passages(tokenizer, passages: int = 8, length: int = 30, seed: int = 0) -> list[list[int]]:
    """``passages`` token sequences: <|endoftext|> + a random passage of ``length`` common words
    (repeated_passage_text with seeds seed, seed+1, ...) + the same passage again."""
    out = []
    for i in range(passages):
        ids = tokenizer.encoding.encode_ordinary(repeated_passage_text(length, seed + i))
        assert len(ids) == length, "every common word must be one GPT-2 token"
        out.append([tokenizer.eot_id] + ids + ids)
    return out


@torch.no_grad()
def copying_score(model, tokenizer, passages: int = 8, length: int = 30, seed: int = 0,
                  autocast=None) -> CopyingScore:
    """Perplexity of the first and of the second copy of repeated random passages."""
    was_training = model.training
    model.eval()
    batch = torch.tensor(repeated_passages(tokenizer, passages, length, seed),
                         device=next(model.parameters()).device)
    with autocast if autocast is not None else torch.autocast("cpu", enabled=False):
        logits = model(batch[:, :-1])
    nll = -F.log_softmax(logits.float(), dim=-1).gather(-1, batch[:, 1:, None])[..., 0]
    # Target position t (1-based in the batch) is token t; the first copy is tokens 1..L.
    first = nll[:, 1:length]  # tokens 2..L of the first copy: token 1 has no context at all
    second = nll[:, length:]  # tokens L+1..2L
    if was_training:
        model.train()
    return CopyingScore(math.exp(first.mean().item()), math.exp(second.mean().item()))


def repeated_passage_text(length: int = 30, seed: int = 0) -> str:
    """A passage of ``length`` random common words (each one GPT-2 token, space first), as text."""
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(0, len(COMMON_WORDS), (length,), generator=generator).tolist()
    return "".join(" " + COMMON_WORDS[p] for p in picks)


def copying_score_of_session(session, passages: int = 8, length: int = 30) -> CopyingScore:
    """copying_score measured through a Session's scoring (what `gpt-tui score` shows): each
    passage scored as <|endoftext|> + passage + passage."""
    first, second = [], []
    for seed in range(passages):
        passage = repeated_passage_text(length, seed)
        tokens, _ = session.score(passage + passage, bos=True)
        logprobs = [t.logprob for t in tokens]
        assert len(logprobs) == 1 + 2 * length, "every common word must be one token"
        first += logprobs[2 : 1 + length]  # the first copy from its 2nd word
        second += logprobs[1 + length :]
    return CopyingScore(math.exp(-sum(first) / len(first)), math.exp(-sum(second) / len(second)))
