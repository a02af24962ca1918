"""Every action of the session, once: its /command, its keys and what it does.

The screen's key bindings, the key bar at the bottom, the command palette (Ctrl+P), /help and F1
are all made from ACTIONS; a key is written nowhere else. The keys are chosen to survive tmux,
SSH and 80×24: F-keys and Ctrl+letters that terminals pass through (no Alt, no Shift+Enter).
Keys marked `anywhere` work even while the text editor has the focus; the others (single
characters such as `/` or `,`) are text there, and act only from the panels.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class Action:
    name: str  # the /command and the action's id
    help: str  # what it does, one line
    keys: tuple[str, ...] = ()  # Textual key names; the first is the one shown
    args: str = ""  # how the arguments look: "N", "[N]", "a b c"; "" for none
    label: str = ""  # a word or two for the key bar
    bar: int = 0  # place in the key bar (1 first); 0: not in the bar
    anywhere: bool = False  # a priority binding: works in the text editor too
    aliases: tuple[str, ...] = ()

    @property
    def needs_args(self) -> bool:
        return bool(self.args) and not self.args.startswith("[")

    @property
    def usage(self) -> str:
        return f"/{self.name} {self.args}".strip()

    @property
    def key_text(self) -> str:
        return " / ".join(key_name(k) for k in self.keys)


ACTIONS: tuple[Action, ...] = (
    Action("help", "every command and key", ("f1",), label="help", bar=1, anywhere=True, aliases=("h", "?")),
    Action("command", "type a /command (the text stays as it is)", ("ctrl+k", "slash", "colon"),
           label="command", bar=2, anywhere=True),
    Action("gen", "generate up to N tokens (N becomes the max)", ("f5", "ctrl+g"), "[N]", "gen", bar=3,
           anywhere=True, aliases=("generate",)),
    Action("step", "generate one token; the candidates show what it was drawn from", ("f6", "ctrl+n"),
           label="step", bar=4, anywhere=True),
    Action("stop", "stop generating (Ctrl+C too) and keep what was written; close a maximised panel", ("escape",),
           label="stop", bar=5),
    Action("take", "append the generated text to the text", ("f7",), label="take", bar=7, anywhere=True),
    Action("max", "maximise the current panel, or restore it", ("f9",), label="max", bar=6, anywhere=True,
           aliases=("maximize", "maximise")),
    Action("panel", "show a panel by name (or press its number outside the text)", (), "NAME"),
    Action("ids", "token ids on the chips (on/off)", ("f2",), label="ids", anywhere=True),
    Action("compare", "other encodings side by side (on/off); with two texts, one word in both, layer by layer",
           ("f3",), '["A" "B" [word]]', label="encodings", anywhere=True),
    Action("overview", "all layers × heads as thumbnails; Enter picks one", ("f4",), label="heads",
           anywhere=True),
    Action("numbers", "attention weights as numbers (on/off)", ("f8",), label="numbers", anywhere=True),
    Action("layer", "show attention layer N (the model is not re-run)", ("comma", "full_stop"), "N"),
    Action("head", "show attention head N (the model is not re-run)", ("left_square_bracket",
                                                                     "right_square_bracket"), "N"),
    Action("select", "select token N (or 'last')", (), "N"),
    Action("temp", "temperature (0 = greedy)", (), "T", aliases=("t", "temperature")),
    Action("topk", "keep the K most likely tokens (0 or off = no cut)", (), "K", aliases=("k",)),
    Action("topp", "keep the most likely tokens up to mass P (1 or off = no cut)", (), "P", aliases=("p",)),
    Action("seed", "pin the seed (same seed, same text); /seed auto: a new one per run", (), "S|auto"),
    Action("knobs", "edit the sampling knobs in the generation panel", ("ctrl+t",), label="knobs",
           anywhere=True),
    Action("analogy", "neighbours of a − b + c (/analogy king man woman)", ("ctrl+r",), "a b c",
           anywhere=True),
    Action("common", "embedding neighbours with the direction every row shares projected out (on/off): what "
           "the rows say beyond how common a token is", ("c",), "[on|off]", label="common"),
    Action("chat", "chat as one document: /chat user: TEXT adds a turn (system, user, assistant); "
           "/chat clear, /chat off", (), "[ROLE: TEXT]"),
    Action("special", "<|endoftext|> in the text as the special token (on/off)", (), "[on|off]"),
    Action("model", "load another model (a directory, a file, or a GPT-2 name)", ("ctrl+o",), "PATH",
           anywhere=True),
    Action("edit", "put the cursor in the text", ("ctrl+e",), label="text"),
    Action("clear", "clear the text and the generation (Ctrl+Z brings the text back)", ("ctrl+l",),
           label="clear", anywhere=True),
    Action("undo", "undo the last change to the text (a clear, a take, a pick)", ("ctrl+z",)),
    Action("export", "save the screen (SVG) and the analysis (JSON) in the current directory", ("ctrl+s",),
           anywhere=True, aliases=("save",)),
    Action("quit", "leave gpt-tui", ("ctrl+q",), label="quit", bar=9, anywhere=True, aliases=("q", "exit")),
)
BY_NAME = {a.name: a for a in ACTIONS}
ALIASES = {alias: a.name for a in ACTIONS for alias in a.aliases}

_KEY_NAMES = {"escape": "Esc", "slash": "/", "colon": ":", "comma": ",", "full_stop": ".", "enter": "⏎",
              "left_square_bracket": "[", "right_square_bracket": "]", "left": "←", "right": "→", "up": "↑",
              "down": "↓", "home": "Home", "end": "End", "tab": "Tab", "shift+tab": "Shift+Tab"}


def key_name(key: str) -> str:
    """A Textual key name as people write it: 'ctrl+k' -> '^K', 'f5' -> 'F5', 'comma' -> ','."""
    if key in _KEY_NAMES:
        return _KEY_NAMES[key]
    if key.startswith("ctrl+") and len(key) == 6:
        return "^" + key[-1].upper()
    if key[:1] == "f" and key[1:].isdigit():
        return key.upper()
    return key


CHARACTER_KEYS = {"slash", "colon", "comma", "full_stop", "left_square_bracket", "right_square_bracket",
                  *"0123456789", "c"}


def bindings() -> list[Binding]:
    """The screen's bindings, one per action key.

    A key that types a character acts through `key(...)`, a priority binding that the screen
    turns off while a text field has the focus (there the character is text); handling it at
    once, before the keys behind it, matters: `/` then `temp` must land in the command bar.
    The other keys act through `do(...)`, priority ones (F-keys, Ctrl) even in the text.
    """
    out = []
    for a in ACTIONS:
        if a.name in ("layer", "head"):  # one key each way
            out += [Binding(a.keys[0], f"key_step('{a.name}', -1)", f"{a.name}−", show=False, priority=True),
                    Binding(a.keys[1], f"key_step('{a.name}', 1)", f"{a.name}+", show=False, priority=True)]
            continue
        chars = [k for k in a.keys if k in CHARACTER_KEYS]
        others = [k for k in a.keys if k not in CHARACTER_KEYS]
        if chars:
            out.append(Binding(",".join(chars), f"key('{a.name}')", a.label or a.name, show=False, priority=True))
        if others:
            out.append(Binding(",".join(others), f"do('{a.name}')", a.label or a.name, show=False,
                               priority=a.anywhere))
    return out


def resolve(name: str) -> Action | None:
    name = name.lower()
    return BY_NAME.get(ALIASES.get(name, name))
