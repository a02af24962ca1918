"""The `gpt-tui train` front end: a Rich progress bar around the Trainer, then export + card."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from gpt_tui.training.train import Trainer, TrainConfig


def run_training(cfg: TrainConfig, console: Console | None = None) -> Path:
    """Train (resuming if a checkpoint is there), export the model and write its model card."""
    console = console or Console(stderr=True)
    trainer = Trainer(cfg, log=console.log)
    params = trainer.model.num_parameters()
    console.log(f"{params/1e6:.1f}M parameters, {trainer.n_train_tokens:,} training tokens, "
                f"{trainer.n_val_tokens:,} validation tokens, precision {trainer.state.precision}")
    columns = (TextColumn("[bold]train"), BarColumn(), TaskProgressColumn(), TextColumn("{task.fields[stats]}"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("train", total=1.0, completed=trainer.progress(), stats="")

        def on_step(t: Trainer, loss: float) -> None:
            if t.state.step % 5 == 0:
                last_val = t.state.curve[-1]["val_loss"] if t.state.curve else None
                stats = f"loss {loss:.3f}" + (f" val {last_val:.3f}" if last_val else "")
                stats += f" {t.state.tokens_per_second:,.0f} tok/s step {t.state.step}"
                progress.update(task, completed=t.progress(), stats=stats)
                if not console.is_terminal and t.state.step % 50 == 0:
                    console.log(f"{t.progress():.1%} {stats}")  # a bar does not redraw in a log file

        trainer.train(on_step=on_step)
    out = trainer.export()
    console.log(f"saved {out / 'model.safetensors'}")
    from gpt_tui.training.card import write_model_card

    card = write_model_card(out, corpus=Path(cfg.corpus), console=console)
    console.log(f"wrote {card}")
    return out
