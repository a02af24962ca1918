"""The least a program can do to print GPT-2 token ids offline: import tiktoken, build the gpt2
encoding from OpenAI's BPE files as the bundled model carries them (model/vocab.json is
encoder.json, model/merges.txt is vocab.bpe), encode, print.

    python benchmarks/minimal_tokenize.py TEXT               # ranks from encoder.json (as gpt-tui does)
    python benchmarks/minimal_tokenize.py --data-gym TEXT    # tiktoken's own loader (replays the merges)

The reference that `gpt-tui tokenize --ids` is timed against (benchmarks/bench_tokenize.py).
"""

import json
import sys
from pathlib import Path

import tiktoken

PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""

args = sys.argv[1:]
data_gym = args[0] == "--data-gym"
text = args[-1]
data = Path(__file__).resolve().parent.parent / "model"
if data_gym:
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks

    ranks = data_gym_to_mergeable_bpe_ranks(str(data / "merges.txt"), str(data / "vocab.json"))
else:
    printable = [b for b in range(256) if chr(b).isprintable() and chr(b) != " "]
    table = {ord(chr(b)): b for b in printable}
    table.update({256 + i: b for i, b in enumerate(b for b in range(256) if b not in printable)})
    encoder = json.loads((data / "vocab.json").read_bytes())
    ranks = {token.translate(table).encode("latin-1"): rank for token, rank in encoder.items()}
    del ranks[b"<|endoftext|>"]
encoding = tiktoken.Encoding("gpt2", pat_str=PATTERN, mergeable_ranks=ranks, special_tokens={"<|endoftext|>": 50256})
print(" ".join(map(str, encoding.encode_ordinary(text))))
