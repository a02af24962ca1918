"""gpt-tui: see how a GPT works, from a terminal."""

__version__ = "0.1.0"
