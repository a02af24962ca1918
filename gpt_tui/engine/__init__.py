"""The headless core of gpt-tui: model, tokenizers, sampling, analysis.

Nothing in this package imports textual or rich (a test enforces it), and importing the package
itself is cheap: submodules that need torch import it themselves.
"""
