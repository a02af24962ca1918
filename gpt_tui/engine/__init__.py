"""The headless core of gpt-tui: model, tokenizers, sampling, analysis.

Nothing in this package imports textual or rich (a test enforces it), and importing the package
itself is cheap: submodules that need torch import it themselves.
"""

import os as _os

# Weights are streamed from memory once per generated token. Backed by 2 MB pages instead of 4 kB
# ones, they stream a few percent faster (fewer TLB misses; the prefetcher is not stopped at every
# 4 kB boundary). PyTorch's CPU allocator does this for large tensors when this variable is set
# before its first allocation, so it is set here, before any engine module imports torch. Linux
# only; elsewhere, or where the kernel has transparent huge pages off, it changes nothing.
_os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
