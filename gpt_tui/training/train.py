"""`gpt-tui train`: train a GPT-2-architecture model on a text corpus, resumable.

AdamW with warm-up and cosine decay over a time or token budget, gradient clipping, bf16 autocast
on CPU when it measures faster, evaluation on the held-out split at intervals, a checkpoint every
few minutes and on Ctrl+C. The output directory is a model gpt-tui loads like any other.
"""

from __future__ import annotations

import copy
import json
import math
import platform
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from gpt_tui.engine.config import GPTConfig
from gpt_tui.engine.gpt import GPT
from gpt_tui.engine.loading import resolve_device
from gpt_tui.engine.tokenizer import get_tokenizer
from gpt_tui.training.memory import keep_freed_memory
from gpt_tui.training.probes import copying_score
from gpt_tui.training.data import Batches, Vocabulary, eval_windows, tokenize_file

STATE_FILE = "train_state.pt"


# the knobs of the training data a resumed run may change (kept in TrainState.changes)
COPYING_KNOBS = ("repeat_fraction", "random_fraction", "max_span", "echo_fraction")
RESUMABLE_KNOBS = (*COPYING_KNOBS, "gate_rare", "average")


@dataclass
class TrainConfig:
    corpus: str  # directory with train.txt and val.txt
    out: str
    n_layer: int = 6
    n_head: int = 6
    n_embd: int = 384
    n_ctx: int = 256
    dropout: float = 0.0
    repeat_fraction: float = 0.0  # share of training windows given a repeated span (see Batches)
    random_fraction: float = 0.0  # share of those spans made of random corpus tokens (see Batches)
    max_span: int = Batches.MAX_SPAN  # longest repeated span, in tokens (the shortest is Batches.MIN_SPAN)
    echo_fraction: float = 0.0  # share of training windows that are one random passage said over and over (see Batches)
    gate_rare: int = 0  # rows of tokens seen fewer times than this get no softmax push-down (GPT.training_loss)
    average: float = 0.0  # decay of a running average of the weights, exported instead of the last step's (0: off)
    init_from: str | None = None  # a gpt-tui model directory of the same shape to start from (warm start)
    compact: bool = True  # embed only the ids the corpus uses (about 2x faster on a CPU)
    batch_size: int = 16
    lr: float = 1.5e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 200
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    minutes: float | None = None  # time budget
    tokens: int | None = None  # token budget (reproducible on a shared machine)
    eval_every_minutes: float = 5.0
    eval_batches: int = 24
    checkpoint_minutes: float = 5.0
    seed: int = 1337
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: str = "auto"  # auto | fp32 | bf16
    save_dtype: str = "bfloat16"
    threads: int | None = None

    def __post_init__(self) -> None:
        """Every knob checked once, before any work: a budget that can never be spent (NaN, −1)
        would train forever, and one that is spent at once would save an untrained model."""
        def positive(name, value, whole=False):
            number = isinstance(value, int) if whole else isinstance(value, (int, float))
            if isinstance(value, bool) or not number or not (math.isfinite(value) and value > 0):
                kind = "a whole number" if whole else "a number"
                raise ValueError(f"--{name.replace('_', '-')} must be {kind} > 0, not {value!r}")

        if self.minutes is None and self.tokens is None:
            raise ValueError("give a budget: --minutes and/or --tokens")
        if self.minutes is not None:
            positive("minutes", self.minutes)
        if self.tokens is not None:
            positive("tokens", self.tokens, whole=True)
        for name in ("n_layer", "n_head", "n_embd", "n_ctx", "batch_size"):
            positive(name, getattr(self, name), whole=True)
        if self.threads is not None:
            positive("threads", self.threads, whole=True)
        for name in ("lr", "eval_every_minutes", "checkpoint_minutes", "grad_clip"):
            positive(name if name != "eval_every_minutes" else "eval_every", getattr(self, name))
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ValueError(f"--warmup-steps must be a whole number ≥ 0, not {self.warmup_steps!r}")
        if not (isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1):
            raise ValueError(f"--dropout must be a number in [0, 1), not {self.dropout!r}")
        for name in ("repeat_fraction", "random_fraction", "echo_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, (int, float)) and 0 <= value <= 1):
                raise ValueError(f"--{name.replace('_', '-')} must be a number in [0, 1], not {value!r}")
        if isinstance(self.max_span, bool) or not isinstance(self.max_span, int) or self.max_span < Batches.MIN_SPAN:
            raise ValueError(f"--max-span must be a whole number ≥ {Batches.MIN_SPAN}, not {self.max_span!r}")
        if isinstance(self.gate_rare, bool) or not isinstance(self.gate_rare, int) or self.gate_rare < 0:
            raise ValueError(f"--gate-rare must be a whole number ≥ 0, not {self.gate_rare!r}")
        if isinstance(self.average, bool) or not (isinstance(self.average, (int, float)) and 0 <= self.average < 1):
            raise ValueError(f"--average must be a number in [0, 1), not {self.average!r}")
        if self.gate_rare and not self.compact:
            raise ValueError("--gate-rare needs the compact vocabulary (token counts)")
        if self.n_embd % self.n_head:
            raise ValueError(f"--n-embd ({self.n_embd}) must be divisible by --n-head ({self.n_head})")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"--precision must be auto, fp32 or bf16, not {self.precision!r}")
        if not (isinstance(self.seed, int) and 0 <= self.seed < 2**63):
            raise ValueError(f"--seed must be a whole number from 0 to 2**63 − 1, not {self.seed!r}")

    def model_config(self, n_rows: int | None) -> GPTConfig:
        return GPTConfig(vocab_size=50257, n_ctx=self.n_ctx, n_embd=self.n_embd, n_layer=self.n_layer,
                         n_head=self.n_head, dropout=self.dropout, n_rows=n_rows)


@dataclass
class TrainState:
    step: int = 0
    tokens_seen: int = 0
    seconds: float = 0.0  # training wall time, summed over resumed runs
    precision: str = "fp32"
    tokens_per_second: float = 0.0
    curve: list[dict] = field(default_factory=list)  # {"step", "tokens", "minutes", "train_loss", "val_loss"}
    finished: bool = False
    # Knobs a resumed run changed (what the data looks like, never the shape): {"step", knob: [old, new]}
    changes: list[dict] = field(default_factory=list)
    averaged_steps: int = 0  # steps folded into the running average of the weights (--average)


class Trainer:
    def __init__(self, cfg: TrainConfig, log=print) -> None:
        if cfg.minutes is None and cfg.tokens is None:
            raise ValueError("give a budget: --minutes and/or --tokens")
        self.cfg = cfg
        self.log = log
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        keep_freed_memory()
        torch.manual_seed(cfg.seed)
        self.device = resolve_device(cfg.device)
        self.tokenizer = get_tokenizer("gpt2")
        corpus = Path(cfg.corpus)
        train_ids = tokenize_file(corpus / "train.txt", self.tokenizer)
        val_ids = tokenize_file(corpus / "val.txt", self.tokenizer)
        self.vocab = Vocabulary.from_tokens(train_ids, val_ids, always=(self.tokenizer.eot_id,))
        if cfg.compact:
            train_rows, val_rows = self.vocab.rows_of(train_ids), self.vocab.rows_of(val_ids)
            n_rows = len(self.vocab.ids)
        else:
            train_rows, val_rows, n_rows = train_ids.astype(np.int64), val_ids.astype(np.int64), None
        self.n_train_tokens, self.n_val_tokens = len(train_ids), len(val_ids)
        for split, n in (("train.txt", self.n_train_tokens), ("val.txt", self.n_val_tokens)):
            if n < cfg.n_ctx + 2:  # a window of n_ctx tokens and the one after it, at least once
                raise ValueError(f"{corpus / split} holds {n:,} tokens, too few for windows of --n-ctx {cfg.n_ctx}")
        self.model_config = cfg.model_config(n_rows)
        self.model = GPT(self.model_config)
        self.model.init_weights(seed=cfg.seed)
        if cfg.compact:
            self.model.set_row_ids(torch.from_numpy(self.vocab.ids))
        self.warm_started_rows = 0
        if cfg.init_from and not (self.out / STATE_FILE).exists():  # a resumed run has its own weights
            self.warm_started_rows = self._warm_start(Path(cfg.init_from))
        self.model.to(self.device)
        self.batches = Batches(train_rows, cfg.n_ctx, cfg.batch_size, seed=cfg.seed,
                               repeat_fraction=cfg.repeat_fraction, random_fraction=cfg.random_fraction,
                               max_span=cfg.max_span, echo_fraction=cfg.echo_fraction)
        self.val = eval_windows(val_rows, cfg.n_ctx, cfg.batch_size, cfg.eval_batches)
        self.gated = self._gated_rows()
        self.optimizer = self._optimizer()
        self.state = TrainState()
        self.average: list[torch.Tensor] | None = None  # the running average of the weights (--average)
        if (self.out / STATE_FILE).exists():
            self._resume()
        else:
            self.state.precision = self._choose_precision()
        if cfg.average and self.average is None:
            self.average = [p.detach().clone() for p in self.model.parameters()]

    # -- set-up ------------------------------------------------------------------------------------

    def _optimizer(self) -> torch.optim.AdamW:
        decay = [p for p in self.model.parameters() if p.dim() >= 2]  # matrices and embeddings
        no_decay = [p for p in self.model.parameters() if p.dim() < 2]  # biases and norm gains
        groups = [{"params": decay, "weight_decay": self.cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=self.cfg.lr, betas=(0.9, 0.95), fused=False)

    def _gated_rows(self) -> torch.Tensor | None:
        """Rows whose softmax push-down is gated (tokens seen fewer than --gate-rare times), or None."""
        if not self.cfg.gate_rare:
            return None
        counts = torch.from_numpy(self.vocab.counts)
        gated = torch.zeros(self.model_config.n_rows + 1, dtype=torch.bool)  # + the unknown row
        gated[: len(counts)] = counts < self.cfg.gate_rare
        self.log(f"gating the push-down of {int(gated.sum()):,} rows (tokens seen < {self.cfg.gate_rare:,} times)")
        return gated.to(self.device)

    def _autocast(self, precision: str):
        if precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _choose_precision(self) -> str:
        """bf16 autocast if it is measurably faster here (it is ~2x on AVX-512 CPUs), else fp32."""
        if self.cfg.precision != "auto":
            return self.cfg.precision
        probe = copy.deepcopy(self.model).train()
        x, y = self.batches.next()
        self.batches.generator.manual_seed(self.cfg.seed)  # the probe must not shift the data order
        timings = {}
        for precision in ("fp32", "bf16"):
            times = []
            for _ in range(3):
                start = time.perf_counter()
                with self._autocast(precision):
                    loss = probe.training_loss(x.to(self.device), y.to(self.device))
                loss.backward()
                times.append(time.perf_counter() - start)
            timings[precision] = min(times[1:])
        choice = "bf16" if timings["bf16"] < 0.9 * timings["fp32"] else "fp32"
        self.log(f"precision: fp32 {timings['fp32']*1e3:.0f} ms/step, bf16 {timings['bf16']*1e3:.0f} ms/step -> {choice}")
        return choice

    def _warm_start(self, path: Path) -> int:
        """Start from a trained model of the same shape: every weight copied, and each embedding
        row matched by token id. A token the earlier corpus never had starts at the mean of the
        carried rows: random rows would each get a random logit through the tied unembedding, and
        16k of them take enough probability to cost ~0.9 nats/token on the old held-out text."""
        from gpt_tui.engine.loading import load_model

        old = load_model(str(path), device="cpu", dtype="float32", optimise=False).model
        for key in ("n_layer", "n_head", "n_embd", "n_ctx"):
            if getattr(old.config, key) != getattr(self.model_config, key):
                raise ValueError(f"--init-from {path}: {key} is {getattr(old.config, key)}, "
                                 f"not {getattr(self.model_config, key)}")
        mine = self.model.state_dict()
        theirs = old.state_dict()
        with torch.no_grad():
            for name, tensor in mine.items():
                if name in ("wte.weight", "row_ids") or name not in theirs:
                    continue
                tensor.copy_(theirs[name])
            old_matrix, old_ids = old.token_embeddings()
            new_matrix, new_ids = self.model.token_embeddings()
            lookup = {int(i): r for r, i in enumerate(old_ids.tolist())}
            pairs = [(r, lookup[int(i)]) for r, i in enumerate(new_ids.tolist()) if int(i) in lookup]
            rows, old_rows = (torch.tensor(side, dtype=torch.long) for side in zip(*pairs))
            fresh = torch.ones(len(new_ids), dtype=torch.bool)
            fresh[rows] = False
            new_matrix[rows] = old_matrix[old_rows]
            new_matrix[fresh] = old_matrix[old_rows].mean(0)
        self.log(f"warm start from {path}: {len(pairs):,} of {len(new_ids):,} embedding rows carried over")
        return len(pairs)

    # -- checkpoints -------------------------------------------------------------------------------

    def _save_state(self) -> None:
        payload = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "batch_rng": self.batches.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "state": json.dumps(asdict(self.state)),
            "config": json.dumps(asdict(self.cfg)),
            **({"average": self.average} if self.average is not None else {}),
        }
        tmp = self.out / (STATE_FILE + ".tmp")
        torch.save(payload, tmp)
        tmp.replace(self.out / STATE_FILE)  # atomic: an interrupted save never corrupts the last one

    def _resume(self) -> None:
        payload = torch.load(self.out / STATE_FILE, map_location=self.device, weights_only=True)
        saved = json.loads(payload["config"])
        for key in ("n_layer", "n_head", "n_embd", "n_ctx", "compact"):
            if saved[key] != getattr(self.cfg, key):
                raise ValueError(f"{self.out} holds a run with {key}={saved[key]}; use another --out")
        self.model.load_state_dict(payload["model"])
        self.model.refresh_id_rows()
        self.optimizer.load_state_dict(payload["optimizer"])
        self.batches.generator.set_state(payload["batch_rng"])
        torch.set_rng_state(payload["torch_rng"])
        self.state = TrainState(**json.loads(payload["state"]))
        if self.cfg.average and "average" in payload:
            self.average = payload["average"]
        elif self.cfg.average:  # averaging starts here: the average begins at these weights
            self.state.averaged_steps = 0
        self.log(f"resumed at step {self.state.step}, {self.state.tokens_seen:,} tokens, "
                 f"{self.state.seconds/60:.1f} min")
        # a run saved before a knob existed trained at that knob's default
        defaults = {f.name: f.default for f in fields(TrainConfig) if f.name in RESUMABLE_KNOBS}
        changed = {key: [saved.get(key, old), getattr(self.cfg, key)] for key, old in defaults.items()
                   if saved.get(key, old) != getattr(self.cfg, key)}
        if changed:  # kept with the run, so its model card can say where the recipe changed
            self.state.changes.append({"step": self.state.step, **changed})
            self.log(f"from step {self.state.step}: " + ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items()))

    # -- the loop ----------------------------------------------------------------------------------

    def progress(self) -> float:
        """Fraction of the budget spent (the larger of time and tokens, when both are given)."""
        parts = []
        if self.cfg.minutes is not None:
            parts.append(self.state.seconds / (60 * self.cfg.minutes))
        if self.cfg.tokens is not None:
            parts.append(self.state.tokens_seen / self.cfg.tokens)
        return min(1.0, max(parts))

    def learning_rate(self) -> float:
        cfg = self.cfg
        if self.state.step < cfg.warmup_steps:
            return cfg.lr * (self.state.step + 1) / cfg.warmup_steps
        floor = cfg.lr * cfg.min_lr_ratio
        return floor + 0.5 * (cfg.lr - floor) * (1 + math.cos(math.pi * self.progress()))

    @torch.no_grad()
    def _update_average(self) -> None:
        """Fold this step's weights into the running average. The decay ramps up (1/10, 2/11, 3/12…
        to --average) so that the weights averaging started from soon stop outweighing the steps since."""
        n = self.state.averaged_steps
        decay = min(self.cfg.average, (1 + n) / (10 + n))
        for mean, p in zip(self.average, self.model.parameters()):
            mean.lerp_(p.detach(), 1 - decay)
        self.state.averaged_steps += 1

    @contextmanager
    def averaged_weights(self):
        """The model holding the running average of its weights (as exported), if there is one."""
        if self.average is None:
            yield self.model
            return
        with torch.no_grad():
            current = [p.detach().clone() for p in self.model.parameters()]
            for p, mean in zip(self.model.parameters(), self.average):
                p.copy_(mean)
        try:
            yield self.model
        finally:
            with torch.no_grad():
                for p, mine in zip(self.model.parameters(), current):
                    p.copy_(mine)

    @torch.no_grad()
    def evaluate(self) -> float:
        """Mean validation loss (nats/token) over the fixed held-out windows."""
        self.model.eval()
        total = 0.0
        for x, y in self.val:
            with self._autocast(self.state.precision):
                total += float(self.model.training_loss(x.to(self.device), y.to(self.device)))
        self.model.train()
        return total / len(self.val)

    def train(self, on_step=None) -> TrainState:
        """Run until the budget is spent; Ctrl+C saves a checkpoint and re-raises."""
        cfg, state = self.cfg, self.state
        self.model.train()
        tokens_per_step = cfg.batch_size * cfg.n_ctx
        last_eval = last_save = state.seconds
        recent: list[float] = []
        try:
            while self.progress() < 1.0:
                started = time.perf_counter()
                for group in self.optimizer.param_groups:
                    group["lr"] = self.learning_rate()
                x, y = self.batches.next()
                with self._autocast(state.precision):
                    loss = self.model.training_loss(x.to(self.device), y.to(self.device), gated=self.gated)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                if self.average is not None:
                    self._update_average()
                state.step += 1
                state.tokens_seen += tokens_per_step
                elapsed = time.perf_counter() - started
                state.seconds += elapsed
                state.tokens_per_second = tokens_per_step / elapsed
                recent.append(loss.item())
                if on_step:
                    on_step(self, recent[-1])
                if state.seconds - last_eval >= 60 * cfg.eval_every_minutes:
                    self._record(recent)
                    recent, last_eval = [], state.seconds
                if state.seconds - last_save >= 60 * cfg.checkpoint_minutes:
                    self._save_state()
                    last_save = state.seconds
        except KeyboardInterrupt:
            self._save_state()
            self.log(f"interrupted: checkpoint saved at step {state.step}; run again to resume")
            raise
        self._record(recent)
        state.finished = True
        self._save_state()
        return state

    def _record(self, recent_losses: list[float]) -> None:
        val = self.evaluate()
        averaged_val, copying = None, None
        with self.averaged_weights():  # the probe measures the weights that will be exported
            if self.average is not None:
                averaged_val = self.evaluate()
            if self.cfg.n_ctx >= 61:  # the probe needs room for two 30-token copies
                copying = copying_score(self.model, self.tokenizer, autocast=self._autocast(self.state.precision))
        point = {
            "step": self.state.step,
            "tokens": self.state.tokens_seen,
            "minutes": round(self.state.seconds / 60, 2),
            "train_loss": round(float(np.mean(recent_losses)), 4) if recent_losses else None,
            "val_loss": round(val, 4),
            **({"averaged_val_loss": round(averaged_val, 4)} if averaged_val is not None else {}),
        }
        if copying is not None:
            point["copy_first_ppl"] = round(copying.first_perplexity, 1)
            point["copy_second_ppl"] = round(copying.second_perplexity, 2)
        self.state.curve.append(point)
        self.log(f"step {point['step']}: train {point['train_loss']}, val {point['val_loss']} "
                 + (f"(averaged weights {averaged_val:.4f}) " if averaged_val is not None else "")
                 + f"({point['minutes']} min, {point['tokens']:,} tokens)"
                 + (f", repeated passage ppl {copying.first_perplexity:.0f} -> {copying.second_perplexity:.1f}"
                    if copying else ""))

    def _init_from_summary(self) -> dict:
        """What the warm start began from: its name and its own training, for the model card."""
        try:
            config = json.loads((Path(self.cfg.init_from) / "config.json").read_text())
        except (OSError, ValueError):
            return {"path": self.cfg.init_from}
        training = config.get("training", {})
        return {"path": self.cfg.init_from, "name": config.get("name"),
                "tokens_seen": training.get("state", {}).get("tokens_seen"),
                "minutes": round(training.get("state", {}).get("seconds", 0) / 60, 1),
                "corpus": training.get("train_config", {}).get("corpus"),
                "final_val_loss": (training.get("curve") or [{}])[-1].get("val_loss"),
                # its own recipe and ancestry, so a chain of warm starts can be told and reproduced
                **({"train_config": training["train_config"]} if "train_config" in training else {}),
                **({"init_from": training["init_from"]} if "init_from" in training else {})}

    # -- export ------------------------------------------------------------------------------------

    def export(self) -> Path:
        """Write model.safetensors + config.json into the output directory (the loadable model)."""
        from gpt_tui.engine.loading import save_model

        meta = {
            "name": self.out.name,
            "tokenizer": "gpt2",
            "training": {
                "train_config": asdict(self.cfg),
                "state": {k: v for k, v in asdict(self.state).items() if k != "curve"},
                "curve": self.state.curve,
                "train_tokens": self.n_train_tokens,
                **({"init_from": self._init_from_summary()} if self.cfg.init_from else {}),
                "val_tokens": self.n_val_tokens,
                "distinct_ids": int(len(self.vocab.ids)),
                "hardware": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
                "torch": torch.__version__,
            },
        }
        counts = torch.from_numpy(self.vocab.counts) if self.cfg.compact else None
        with self.averaged_weights() as model:
            return save_model(model, self.out, meta=meta, dtype=getattr(torch, self.cfg.save_dtype),
                              token_counts=counts)
