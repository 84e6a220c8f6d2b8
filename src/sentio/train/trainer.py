"""The deterministic trainer: one readable top-to-bottom loop (torch).

AdamW (weight decay on matrices only), linear warm-up then cosine decay, gradient clipping,
explicit class weighting (positive weight = negatives / positives in the training split), early
stopping on the validation log loss (the best epoch's weights are kept). Each epoch ends with a
checkpoint (``torch.save`` of plain state dicts, loaded with ``weights_only=True``) holding
everything the next epoch depends on, so a run killed after any epoch and resumed reaches the
same final weights as one never stopped. Determinism: seeds for torch and for the shuffling
(``sentio.core.seeding``), deterministic algorithms, a fixed thread count.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sentio.core.errors import SentioError
from sentio.core.seeding import rng_for
from sentio.train.chunks import gather, plan_chunks
from sentio.train.config import CHECKPOINT, TrainConfig
from sentio.train.evaluate import auc, log_loss, sigmoid
from sentio.train.samples import Samples, Split, windows

# Causal presets: a chunk holds at most this many consecutive labelled rows (after its
# context); a training batch takes ceil(batch_size / SPAN) chunks, so about batch_size labels.
SPAN = 128  # bench/causal.py: 64 rows per chunk gave 8x the window preset's samples/s, 128: 11x
EVAL_SPAN = 1024  # chunks when only predicting: longer, less context recomputed


class CheckpointError(SentioError):
    """A checkpoint that does not belong to this run, or is damaged."""


@dataclass
class TrainResult:
    state: dict[str, torch.Tensor]  # weights of the best epoch
    best_epoch: int
    history: list[dict]


def setup_determinism(seed: int, threads: int) -> None:
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)


def _schedule(cfg: TrainConfig, total_steps: int) -> Callable[[int], float]:
    warmup = max(1, int(cfg.warmup_frac * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return cfg.min_lr_frac + (1 - cfg.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def is_causal(model: nn.Module) -> bool:
    return bool(getattr(model.cfg, "causal", False))


def predict_logits(
    model: nn.Module,
    features: np.ndarray,
    rows: np.ndarray,
    seq_len: int,
    device: str,
    batch: int = 1024,
    *,
    starts: np.ndarray | None = None,
) -> np.ndarray:
    """Eval-mode logits (float64) of ``rows``: the windows ending there, or for a causal
    model the rows themselves, each with its context (``starts``: ``chunks.run_starts`` of
    the feature rows, required then)."""
    model.eval()
    if is_causal(model):
        return _causal_logits(model, features, rows, starts, device)
    out = []
    with torch.no_grad():
        for start in range(0, len(rows), batch):
            x = torch.from_numpy(windows(features, rows[start : start + batch], seq_len))
            out.append(model(x.to(device)).reshape(-1).double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def _causal_logits(model, features, rows, starts, device) -> np.ndarray:
    if starts is None:
        raise ValueError("a causal model's logits need the rows' run starts")
    plan = plan_chunks(rows, starts, model.cfg.reach, EVAL_SPAN)
    out = np.zeros(len(rows))
    with torch.no_grad():
        for k in range(len(plan.bounds)):  # one chunk at a time: chunks differ in length
            x = torch.from_numpy(gather(features, plan.bounds[k : k + 1])).to(device)
            logits = model(x)[0].double().cpu().numpy()  # (C,)
            mine = plan.chunk == k
            out[mine] = logits[plan.position[mine]]
    return out


class WindowFeeder:
    """Training batches of the window presets: one window per labelled row."""

    def __init__(self, features: np.ndarray, rows: np.ndarray, seq_len: int) -> None:
        self.features, self.rows, self.seq_len = features, rows, seq_len

    def steps(self, batch_size: int) -> int:
        return math.ceil(len(self.rows) / batch_size)

    def batches(self, order: np.ndarray, batch_size: int):
        """(x (B, T, F), sample indices (B,), pick) per step; ``pick(logits) -> (B,)``."""
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            x = torch.from_numpy(windows(self.features, self.rows[batch], self.seq_len))
            yield x, batch, lambda logits: logits.reshape(-1)  # (B, 1) -> (B,)


class ChunkFeeder:
    """Training batches of the causal presets: chunks of consecutive rows, every labelled
    row of a chunk in the loss (``sentio.train.chunks``). The order shuffles chunks."""

    def __init__(self, features, rows, starts, context: int) -> None:
        self.features = features
        self.plan = plan_chunks(rows, starts, context, SPAN)

    def steps(self, batch_size: int) -> int:
        return math.ceil(len(self.plan.bounds) / math.ceil(batch_size / SPAN))

    def batches(self, order: np.ndarray, batch_size: int):
        """``order`` permutes chunks; yields (x (K, C, F), sample indices (S,), pick)."""
        per = math.ceil(batch_size / SPAN)
        for start in range(0, len(order), per):
            chosen = order[start : start + per]  # chunk numbers
            x = torch.from_numpy(gather(self.features, self.plan.bounds[chosen]))
            slot = np.full(len(self.plan.bounds), -1)
            slot[chosen] = np.arange(len(chosen))
            samples = np.flatnonzero(slot[self.plan.chunk] >= 0)  # labelled rows in them
            where = torch.from_numpy(slot[self.plan.chunk[samples]])
            at = torch.from_numpy(self.plan.position[samples])
            yield (
                x,
                samples,
                lambda logits, w=where, a=at: logits[w.to(logits.device), a.to(logits.device)],
            )


def train(
    model: nn.Module,
    features: np.ndarray,
    samples: Samples,
    split: Split,
    cfg: TrainConfig,
    checkpoints: Path,
    *,
    fingerprint: str,
    resume: bool = False,
    report: Callable[[str, dict], None] | None = None,
    weights: np.ndarray | None = None,
    starts: np.ndarray | None = None,
) -> TrainResult:
    """Train ``model`` on the training windows; keep the weights of the best validation epoch.

    ``weights`` (one per training sample, mean 1) scales each sample's loss (``--multi-regime``
    balances regimes with it); None: every sample counts once.

    A causal model (``model.cfg.causal``) trains on chunks: every labelled row of a chunk
    contributes to the loss of one forward pass; ``starts`` (``chunks.run_starts`` of the
    feature rows) says where each row's run of ready rows begins.

    ``fingerprint`` identifies data + configuration; a checkpoint from another run is refused.
    ``report(event, values)`` receives "start", "step" and "epoch" events (for progress bars).
    """
    report = report or (lambda event, values: None)
    seq_len = model.cfg.seq_len
    device = torch.device(cfg.device)
    model.to(device)
    train_rows, train_y = samples.rows[split.train], samples.labels[split.train]
    val_rows, val_y = samples.rows[split.validation], samples.labels[split.validation]
    positives = float(train_y.sum())
    pos_weight = torch.tensor([(len(train_y) - positives) / max(positives, 1.0)], device=device)
    reduction = "mean" if weights is None else "none"
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight, reduction=reduction)
    if weights is not None:
        weights_t = torch.from_numpy(np.asarray(weights, dtype=np.float32)).to(device)

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.learning_rate,
    )
    if is_causal(model):
        feeder = ChunkFeeder(features, train_rows, starts, model.cfg.reach)
        units = len(feeder.plan.bounds)  # the epoch shuffles chunks
    else:
        feeder, units = WindowFeeder(features, train_rows, seq_len), len(train_rows)
    steps_per_epoch = feeder.steps(cfg.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _schedule(cfg, cfg.epochs * steps_per_epoch)
    )

    history: list[dict] = []
    best_loss, best_epoch, bad_epochs, first_epoch = math.inf, -1, 0, 0
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    checkpoints.mkdir(parents=True, exist_ok=True)
    if resume:
        saved = load_checkpoint(checkpoints, fingerprint)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["torch_rng"])
        best_state, history = saved["best_state"], saved["history"]
        best_loss, best_epoch = saved["best_loss"], saved["best_epoch"]
        bad_epochs, first_epoch = saved["bad_epochs"], saved["epoch"] + 1
        if bad_epochs >= cfg.patience:
            first_epoch = cfg.epochs  # the run had already stopped early

    report("start", {"steps": cfg.epochs * steps_per_epoch, "done": first_epoch * steps_per_epoch})
    for epoch in range(first_epoch, cfg.epochs):
        model.train()
        order = rng_for(cfg.seed, f"train.shuffle.epoch{epoch}").permutation(units)
        total, seen = 0.0, 0
        for x, batch, pick in feeder.batches(order, cfg.batch_size):
            y = torch.from_numpy(train_y[batch]).to(device)
            loss = loss_fn(pick(model(x.to(device))), y)  # (B,) logits vs 0/1 labels
            if weights is not None:
                loss = (loss * weights_t[torch.from_numpy(batch)]).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            value = float(loss.detach())
            total, seen = total + value * len(batch), seen + len(batch)
            report("step", {"loss": value})
        val_p = sigmoid(
            predict_logits(model, features, val_rows, seq_len, cfg.device, starts=starts)
        )
        row = {
            "epoch": epoch,
            "train_loss_weighted": total / max(seen, 1),
            "val_log_loss": log_loss(val_y, val_p),
            "val_auc": auc(val_y, val_p),
            "lr": float(scheduler.get_last_lr()[0]),
        }
        history.append(row)
        if row["val_log_loss"] < best_loss - 1e-7:
            best_loss, best_epoch, bad_epochs = row["val_log_loss"], epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
        report("epoch", row)
        save_checkpoint(
            checkpoints,
            {
                "fingerprint": fingerprint,
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "best_state": best_state,
                "best_loss": best_loss,
                "best_epoch": best_epoch,
                "bad_epochs": bad_epochs,
                "history": history,
            },
        )
        if bad_epochs >= cfg.patience:
            break
    return TrainResult(state=best_state, best_epoch=best_epoch, history=history)


def save_checkpoint(directory: Path, payload: dict) -> None:
    """Write ``last.pt`` atomically (a kill mid-write leaves the previous epoch's)."""
    # a unique temporary name: a fixed one could be a planted symlink (issue 12 section 2)
    fd, name = tempfile.mkstemp(prefix=f".{CHECKPOINT}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        torch.save(payload, name)
        os.replace(name, directory / CHECKPOINT)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def load_checkpoint(directory: Path, fingerprint: str) -> dict:
    path = directory / CHECKPOINT
    if not path.exists():
        raise CheckpointError(f"{path}: no checkpoint to resume from")
    try:
        saved = torch.load(path, weights_only=True)
    except Exception as exc:  # a damaged file: torch raises several kinds
        raise CheckpointError(f"{path}: unreadable checkpoint ({exc})") from exc
    if saved.get("fingerprint") != fingerprint:
        raise CheckpointError(
            f"{path}: checkpoint of another run (data or configuration differ); "
            "resume with the same flags and data, or start a new --output"
        )
    return saved


__all__ = [
    "ChunkFeeder",
    "CheckpointError",
    "TrainConfig",
    "TrainResult",
    "WindowFeeder",
    "predict_logits",
    "train",
]
