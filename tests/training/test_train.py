"""The trainer end to end on a tiny corpus: it learns, exports a loadable model, resumes exactly."""

from __future__ import annotations

import random

import pytest
import torch

from gpt_tui.engine.loading import load_model
from gpt_tui.engine.sampling import SamplingParams
from gpt_tui.engine.session import Session
from gpt_tui.training.train import Trainer, TrainConfig


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A few thousand tokens of a tiny grammar: learnable in seconds."""
    rng = random.Random(0)
    subjects, verbs, objects = ["the king", "the queen", "a man", "my love"], ["saw", "loved", "met"], ["the night", "three men", "her"]
    def doc(n):
        return " ".join(f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}." for _ in range(n))
    path = tmp_path_factory.mktemp("corpus")
    (path / "train.txt").write_text("<|endoftext|>".join(doc(300) for _ in range(4)))
    (path / "val.txt").write_text(doc(80))
    return path


def config(corpus, out, **overrides):
    base = dict(corpus=str(corpus), out=str(out), n_layer=2, n_head=2, n_embd=32, n_ctx=32, batch_size=8,
                lr=3e-3, warmup_steps=5, tokens=8 * 32 * 40, eval_every_minutes=1e9, eval_batches=2,
                precision="fp32", threads=1, save_dtype="float32")
    return TrainConfig(**{**base, **overrides})


def interrupted_at(step, cfg):
    """Train with `cfg` until `step`, then Ctrl+C: the trainer saves its checkpoint and re-raises."""
    def stop(trainer, loss):
        if trainer.state.step == step:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, log=lambda *a: None).train(on_step=stop)


def test_loss_goes_down_and_the_export_reloads_identically(corpus, tmp_path):
    trainer = Trainer(config(corpus, tmp_path / "run"), log=lambda *a: None)
    before = trainer.evaluate()
    state = trainer.train()
    after = state.curve[-1]["val_loss"]
    assert state.finished and state.step == 40
    assert after < before - 1.0, (before, after)
    out = trainer.export()
    loaded = load_model(str(out), device="cpu", dtype="float32")
    for name, tensor in trainer.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], tensor), name
    # The compact vocabulary: the corpus's ids only, the rest never predicted.
    assert loaded.config.n_rows == len(trainer.vocab.ids) < 100
    logits = loaded.model(torch.tensor([[262, 5822]]))[0, -1]
    assert torch.isinf(logits).sum() == 50257 - loaded.config.n_rows
    assert loaded.token_counts is not None and int(loaded.token_counts.sum()) == trainer.n_train_tokens


def test_interrupted_run_resumes_where_it_stopped(corpus, tmp_path):
    straight = Trainer(config(corpus, tmp_path / "straight"), log=lambda *a: None)
    straight.train()

    interrupted_at(17, config(corpus, tmp_path / "resumed"))
    assert (tmp_path / "resumed" / "train_state.pt").exists()
    second = Trainer(config(corpus, tmp_path / "resumed"), log=lambda *a: None)
    assert second.state.step == 17
    second.train()
    assert second.state.step == straight.state.step
    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(second.model.state_dict()[name], tensor), name


def test_resume_refuses_a_different_shape(corpus, tmp_path):
    Trainer(config(corpus, tmp_path / "run", tokens=8 * 32 * 2), log=lambda *a: None).train()
    with pytest.raises(ValueError, match="n_embd=32"):
        Trainer(config(corpus, tmp_path / "run", n_embd=64), log=lambda *a: None)


def test_trained_model_generates_deterministically(corpus, tmp_path):
    trainer = Trainer(config(corpus, tmp_path / "run"), log=lambda *a: None)
    trainer.train()
    session = Session.open(str(trainer.export()), device="cpu")
    ids = session.encode("the king").ids
    params = SamplingParams(temperature=0.8, top_k=5)
    first = [t.id for t in session.generate(ids, params, 20, seed=1)]
    assert first == [t.id for t in session.generate(ids, params, 20, seed=1)]
    assert first != [t.id for t in session.generate(ids, params, 20, seed=2)]
    # It learned the grammar: after "the king" comes a verb.
    greedy = session.generate(ids, SamplingParams(temperature=0), 1, seed=0)
    assert next(greedy).text in (" saw", " loved", " met")


def test_a_warm_start_carries_every_weight_and_each_embedding_row_by_token_id(corpus, tmp_path):
    first = Trainer(config(corpus, tmp_path / "first"), log=lambda *a: None)
    first.train()
    old_dir = first.export()
    # A wider corpus: the old one plus words the first model never saw.
    wider = tmp_path / "wider"
    wider.mkdir()
    (wider / "train.txt").write_text((corpus / "train.txt").read_text() + "<|endoftext|>" +
                                     " the violin played a sonata." * 30)
    (wider / "val.txt").write_text((corpus / "val.txt").read_text())
    second = Trainer(config(wider, tmp_path / "second", init_from=str(old_dir)), log=lambda *a: None)
    old_matrix, old_ids = first.model.token_embeddings()
    new_matrix, new_ids = second.model.token_embeddings()
    old_row = {int(i): r for r, i in enumerate(old_ids.tolist())}
    carried = [r for r, i in enumerate(new_ids.tolist()) if int(i) in old_row]
    fresh = [r for r, i in enumerate(new_ids.tolist()) if int(i) not in old_row]
    assert second.warm_started_rows == len(carried) == len(old_ids) and fresh
    for r in carried:
        assert torch.equal(new_matrix[r], old_matrix[old_row[int(new_ids[r])]])
    # A token new to the corpus starts at the mean of the known rows, not at random.
    assert torch.allclose(new_matrix[fresh], old_matrix.mean(0).expand(len(fresh), -1), atol=1e-6)
    for name, tensor in first.model.state_dict().items():
        if name not in ("wte.weight", "row_ids"):
            assert torch.equal(second.model.state_dict()[name], tensor), name
    # It starts where the first model ended, so it is already good on the old held-out text.
    assert second.evaluate() < first.state.curve[0]["val_loss"] + 0.2
    second.train()
    card = second.export() / "config.json"
    assert '"init_from"' in card.read_text()


def test_a_warm_start_refuses_a_model_of_another_shape(corpus, tmp_path):
    first = Trainer(config(corpus, tmp_path / "first", tokens=8 * 32 * 2), log=lambda *a: None)
    first.train()
    with pytest.raises(ValueError, match="n_embd is 32, not 64"):
        Trainer(config(corpus, tmp_path / "second", n_embd=64, init_from=str(first.export())), log=lambda *a: None)


def test_a_resumed_run_records_a_changed_repeat_fraction(corpus, tmp_path):
    """Resuming with another --repeat-fraction is allowed (the shape is the same), and the run keeps
    where it changed, for the model card."""
    from gpt_tui.training.card import _repeat_history

    interrupted_at(10, config(corpus, tmp_path / "run", repeat_fraction=0.25))
    second = Trainer(config(corpus, tmp_path / "run", repeat_fraction=0.5), log=lambda *a: None)
    assert second.state.changes == [{"step": 10, "repeat_fraction": [0.25, 0.5]}]
    assert second.batches.repeat_fraction == 0.5
    second.train()
    from dataclasses import asdict

    assert _repeat_history(asdict(second.state)) == "until step 10: 25%; from then on: "


def test_the_card_tells_each_phase_of_a_recipe_changed_twice():
    """Both shares changed on resume, then the random share and the span length: every phase keeps its
    figures, and the command that reproduces the run carries the last ones."""
    from gpt_tui.training.card import _repeat_text, _train_command

    state = {"changes": [{"step": 328, "repeat_fraction": [0.75, 1.0], "random_fraction": [0.5, 0.75]},
                         {"step": 617, "random_fraction": [0.75, 1.0], "max_span": [64, 128]}]}
    cfg = {"repeat_fraction": 1.0, "random_fraction": 1.0, "max_span": 128}
    text = _repeat_text(state, cfg)
    assert text.startswith("until step 328: 75% (50% of the spans random, spans up to 64 tokens); "
                           "until step 617: 100% (75% of the spans random, spans up to 64 tokens); "
                           "from then on: 100% of the training windows get a stretch of 16-128 "), text
    assert "in 100% of those the stretch is first replaced" in text
    assert "--max-span 128" in _train_command({**cfg, "minutes": 1}, "runs/x", "bf16")
    assert "--max-span" not in _train_command({"repeat_fraction": 0.5, "max_span": 64, "minutes": 1}, "runs/x", "bf16")


def test_the_card_tells_echo_windows_and_when_they_started():
    from gpt_tui.training.card import _repeat_text, _train_command

    state = {"changes": [{"step": 200, "echo_fraction": [0.0, 0.5]}]}
    cfg = {"repeat_fraction": 0.25, "random_fraction": 0.0, "max_span": 64, "echo_fraction": 0.5}
    text = _repeat_text(state, cfg)
    assert text.startswith("until step 200: 25% (0% echo windows); from then on: 50% of the training windows are "
                           "echoes: one passage of 16-64 tokens"), text
    assert "of the others, 25% of the training windows get a stretch" in text
    assert "--echo-fraction 0.5" in _train_command({**cfg, "minutes": 1}, "runs/x", "bf16")
    assert _repeat_text({}, {"repeat_fraction": 0.0}) == "none"


def test_a_chain_of_warm_starts_is_told_and_reproducible_from_the_card(corpus, tmp_path):
    """A model warm-started from a model that was itself warm-started: the card names both
    ancestors and its recipe trains every stage, each from the one before."""
    from gpt_tui.training.card import write_model_card

    first = Trainer(config(corpus, tmp_path / "first"), log=lambda *a: None)
    first.train()
    second = Trainer(config(corpus, tmp_path / "second", init_from=str(first.export()), repeat_fraction=0.5),
                     log=lambda *a: None)
    second.train()
    third = Trainer(config(corpus, tmp_path / "third", init_from=str(second.export()), repeat_fraction=0.5,
                           random_fraction=0.25, lr=1e-3), log=lambda *a: None)
    third.train()
    card = write_model_card(third.export(), corpus).read_text()
    started = next(line for line in card.splitlines() if line.startswith("| started from"))
    assert f"`{tmp_path / 'second'}` (second), itself trained" in started
    assert f"from `{tmp_path / 'first'}`" in started
    recipe = card.split("## Reproduce")[1]
    commands = [line for line in recipe.splitlines() if line.startswith("gpt-tui train")]
    assert len(commands) == 3  # first from random weights, then each stage from the one before
    assert "--out runs/stage1" in commands[0] and "--init-from" not in commands[0]
    assert f"--tokens {8 * 32 * 40}" in commands[0] and "--minutes" not in commands[0]
    assert "--out runs/stage2" in commands[1] and "--init-from runs/stage1" in commands[1]
    assert "--repeat-fraction 0.5" in commands[1] and "--lr 0.003" in commands[1]
    assert "--out runs/bundled" in commands[2] and "--init-from runs/stage2" in commands[2]
    assert "--random-fraction 0.25" in commands[2] and "--lr 0.001" in commands[2]
    assert "25% of those the stretch is first replaced by tokens drawn at random" in card


def test_kill_stops_a_background_run_with_a_checkpoint(corpus, tmp_path):
    """`kill PID` (SIGTERM) on `gpt-tui train` saves a checkpoint and ends as Ctrl+C does (130, one
    line), even where Ctrl+C's own signal is ignored, as it is in a shell's background job."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    child = subprocess.Popen(
        [sys.executable, "-m", "gpt_tui", "train", "--corpus", str(corpus), "--out", str(out), "--minutes", "10",
         "--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--n-ctx", "32", "--batch-size", "2",
         "--dtype", "float32", "--threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))  # as `nohup … &` starts it
    lines = []
    for line in child.stdout:  # the loop has begun once the run has said what it trains
        lines.append(line)
        if "parameters" in line:
            break
    time.sleep(2)
    child.send_signal(signal.SIGTERM)
    rest, _ = child.communicate(timeout=60)
    output = "".join(lines) + rest
    assert child.returncode == 130, output
    assert (out / "train_state.pt").exists(), output
    assert "checkpoint saved" in output and "Traceback" not in output, output


def test_gating_keeps_the_loss_and_only_the_push_down_along_the_mean_hidden_state():
    """--gate-rare: the loss and every gradient but the gated rows' are unchanged. A gated row's
    push-down keeps only its part along the mean hidden state (how rare the token is), so one that
    is neither input nor target gets that projection of its plain gradient; a gated target keeps
    its whole pull toward the hidden state that predicted it."""
    from gpt_tui.engine.config import GPTConfig
    from gpt_tui.engine.gpt import GPT

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50257, n_ctx=16, n_embd=32, n_layer=1, n_head=2, n_rows=20))
    model.init_weights(seed=0)
    model.set_row_ids(torch.arange(20))
    x = torch.tensor([[1, 2, 3, 4, 5, 6]])
    y = torch.tensor([[2, 3, 4, 5, 6, 15]])  # 15: a gated target; 12: gated, never seen here
    gated = torch.zeros(21, dtype=torch.bool)
    gated[12:18] = True
    params = list(model.parameters())
    plain = model.training_loss(x, y)
    plain_grads = torch.autograd.grad(plain, params)
    loss = model.training_loss(x, y, gated=gated)
    grads = torch.autograd.grad(loss, params)
    assert torch.equal(loss, plain)
    for (name, _), a, b in zip(model.named_parameters(), plain_grads, grads):
        if name != "wte.weight":
            assert torch.allclose(a, b, atol=1e-7), name
    wte_plain, wte = plain_grads[0], grads[0]
    assert torch.allclose(wte_plain[~gated], wte[~gated], atol=1e-7)

    with torch.no_grad():
        h = model.ln_f(model.hidden(x))[0]  # (T, D)
        p = (h @ model.wte.weight.T).softmax(-1)  # (T, R)
    u = h.mean(0) / h.mean(0).norm()
    along = torch.outer(u, u)
    n = y.numel()
    # never input nor target: plain CE pushes it by sum_t p_t h_t / N; gated, only along u
    assert wte_plain[12].norm() > 0 and wte[12].norm() > 0
    assert torch.allclose(wte[12], along @ wte_plain[12], atol=1e-7)
    # the target (last position): the push along u, plus the whole pull -h_T / N
    push = (p[:, 15, None] * h).sum(0) / n
    assert torch.allclose(wte[15], along @ push - h[-1] / n, atol=1e-7)
    assert not torch.allclose(wte[15], wte_plain[15], atol=1e-5)


def test_a_run_with_gating_trains_and_records_the_knob(corpus, tmp_path):
    trainer = Trainer(config(corpus, tmp_path / "run", gate_rare=1000, tokens=8 * 32 * 20), log=lambda *a: None)
    rare = trainer.vocab.counts < 1000
    assert 0 < rare.sum() < len(rare)
    assert trainer.gated.tolist() == [*rare.tolist(), False]  # the unknown row (never a target) is not gated
    before = trainer.evaluate()
    state = trainer.train()
    assert state.curve[-1]["val_loss"] < before - 0.5
    with pytest.raises(ValueError, match="--gate-rare"):
        config(corpus, tmp_path / "bad", gate_rare=-1)


def test_the_running_average_of_the_weights_is_what_is_exported(corpus, tmp_path):
    """--average: every step folds the weights into a running average (decay ramping up to the
    knob), and the export, the validation column and the copying probe use it; the training
    weights themselves are untouched. Checked against an average kept by hand, step by step."""
    decay = 0.9
    trainer = Trainer(config(corpus, tmp_path / "run", average=decay, tokens=8 * 32 * 30), log=lambda *a: None)
    by_hand = [p.detach().clone() for p in trainer.model.parameters()]

    def follow(t, loss):
        n = t.state.step - 1  # steps averaged before this one
        d = min(decay, (1 + n) / (10 + n))
        for mean, p in zip(by_hand, t.model.parameters()):
            mean.mul_(d).add_(p.detach(), alpha=1 - d)

    state = trainer.train(on_step=follow)
    assert state.averaged_steps == 30
    last = [p.detach().clone() for p in trainer.model.parameters()]
    for mean, mine in zip(trainer.average, by_hand):
        assert torch.allclose(mean, mine, atol=1e-6)
    assert not all(torch.equal(m, p) for m, p in zip(trainer.average, last))  # an average, not the last step
    point = state.curve[-1]
    with trainer.averaged_weights():
        assert point["averaged_val_loss"] == round(trainer.evaluate(), 4)
    assert all(torch.equal(p, q) for p, q in zip(trainer.model.parameters(), last))  # put back
    loaded = load_model(str(trainer.export()), device="cpu", dtype="float32")
    names = [n for n, _ in trainer.model.named_parameters()]
    for name, mean in zip(names, trainer.average):
        assert torch.equal(loaded.model.state_dict()[name], mean), name
    # The card says which weights ship, shows the averaged column, and its recipe line keeps the knob.
    from gpt_tui.training.card import render_card

    card = render_card(Session(loaded), sources=None)
    assert "| weights shipped | a running average of the weights (`--average 0.9`), not the last step's: over the " \
           "30 steps it was kept, each new step weighs 0.1, so the average leans on the last ~10;" in card
    assert "| validation loss | averaged weights | 1st copy ppl |" in card
    assert f"| {point['val_loss']} | {point['averaged_val_loss']} |" in card
    assert "--average 0.9 " in card


def test_the_running_average_resumes_with_the_run(corpus, tmp_path):
    straight = Trainer(config(corpus, tmp_path / "straight", average=0.9), log=lambda *a: None)
    straight.train()

    interrupted_at(17, config(corpus, tmp_path / "resumed", average=0.9))
    second = Trainer(config(corpus, tmp_path / "resumed", average=0.9), log=lambda *a: None)
    second.train()
    for mine, theirs in zip(second.average, straight.average):
        assert torch.equal(mine, theirs)
    with pytest.raises(ValueError, match="--average"):
        config(corpus, tmp_path / "bad", average=1.0)
