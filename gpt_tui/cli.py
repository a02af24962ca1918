"""gpt-tui's command line. Imports are lazy so that `tokenize` never imports torch."""

from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, no_args_is_help=False, help="See how a GPT works, from a terminal.")


@app.callback(invoke_without_command=True)
def session(ctx: typer.Context) -> None:
    """Open the interactive session when no subcommand is given."""
    if ctx.invoked_subcommand is None:
        typer.echo("the interactive session is not built yet", err=True)


@app.command()
def train(
    corpus: str = typer.Option("data/corpus", help="directory with train.txt and val.txt"),
    out: str = typer.Option("runs/bundled", help="output directory (resumes if it holds a checkpoint)"),
    minutes: float = typer.Option(None, help="time budget in minutes"),
    tokens: int = typer.Option(None, help="token budget (reproducible on a shared machine)"),
    n_layer: int = typer.Option(6), n_head: int = typer.Option(6), n_embd: int = typer.Option(384),
    n_ctx: int = typer.Option(256), dropout: float = typer.Option(0.0),
    batch_size: int = typer.Option(16), lr: float = typer.Option(1.5e-3), warmup_steps: int = typer.Option(200),
    compact: bool = typer.Option(True, help="embed only the token ids the corpus uses"),
    eval_every: float = typer.Option(5.0, help="minutes between validation runs"),
    seed: int = typer.Option(1337), device: str = typer.Option("cpu"),
    precision: str = typer.Option("auto", help="auto | fp32 | bf16 (autocast)"),
    threads: int = typer.Option(None, help="CPU threads for PyTorch"),
) -> None:
    """Train a GPT-2-architecture model on a text corpus (Ctrl+C saves; run again to resume)."""
    from gpt_tui.training.run import run_training
    from gpt_tui.training.train import TrainConfig

    if minutes is None and tokens is None:
        raise typer.BadParameter("give a budget: --minutes and/or --tokens")
    cfg = TrainConfig(corpus=corpus, out=out, n_layer=n_layer, n_head=n_head, n_embd=n_embd, n_ctx=n_ctx,
                      dropout=dropout, compact=compact, batch_size=batch_size, lr=lr, warmup_steps=warmup_steps,
                      minutes=minutes, tokens=tokens, eval_every_minutes=eval_every, seed=seed, device=device,
                      precision=precision, threads=threads)
    try:
        run_training(cfg)
    except KeyboardInterrupt:
        raise typer.Exit(130)


def main() -> None:
    app()
