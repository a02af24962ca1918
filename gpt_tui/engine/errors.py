"""The engine's own errors: each message is written for the user, one true line saying what is wrong.

The command line shows such a message as it is (gpt_tui/errors.py); anything else that escapes
the engine is a bug or an environment problem and is shown with its type. Importing this module
is free (no torch), so the entry point can tell these errors apart without loading the engine.
"""

from __future__ import annotations


class GptTuiError(Exception):
    """An error whose message is meant for the user as it is."""


class NonFiniteError(GptTuiError, ArithmeticError):
    """The model's outputs hold NaN or +inf: its weights or its arithmetic (float16 overflow) broke."""

    def __init__(self, where: str = "") -> None:
        super().__init__("the model produced non-finite values (NaN or infinity)" + (f" {where}" if where else "")
                         + "; its weights may be corrupt — check the checkpoint, or try --dtype float32")
