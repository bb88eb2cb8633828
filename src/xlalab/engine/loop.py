"""The one training loop, read top to bottom: build, (resume), train an epoch, evaluate,
log, checkpoint, keep the best weights. It runs unchanged on every backend in runtime.py. Beside it:
the optimizer and schedule (optimizer.py), the checkpoints and what they hold (checkpoints.py), and
what a person watches meanwhile: DVCLive's curves and the progress of each epoch (progress.py).

XLA discipline kept here for every backend (it costs nothing on CPU or CUDA):
fixed batch shapes (data.Batches), no ``.item()`` inside a step (losses stay on the device and
reach the host through ``backend.on_host`` or once per epoch), and compiled steps whose graph
count is capped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UserError
from .batches import WEIGHT, Batch, Batches, LengthBuckets, check_tensors
from .checkpoints import TrainingState, resume, save_checkpoint
from .optimizer import Schedule, build_optimizer, lr_schedule
from .progress import EpochLog, StepProgress
from .runtime import Backend
from .settings import TrainConfig
from .task import Task, forward_x

logger = logging.getLogger(__name__)


@dataclass
class FitResult:
    best_state: dict[str, torch.Tensor]
    best_epoch: int
    history: list[dict[str, float]]
    stopped_early: bool
    compile_counts: list[int | None]  # cumulative XLA compiles after each epoch (None off XLA)
    resumed_epochs: int = 0  # epochs that came from a checkpoint rather than this run

    @property
    def best(self) -> dict[str, float]:
        return self.history[self.best_epoch - 1]

    @classmethod
    def of(
        cls, state: TrainingState, compile_counts: list[int | None], resumed_epochs: int
    ) -> FitResult:
        return cls(
            state.best_weights(),
            state.best_epoch,
            state.history,
            state.stopped_early,
            compile_counts,
            resumed_epochs,
        )


def _cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


class _Steps:
    """The compiled steps of one model and optimizer: a micro-batch (gradients only), an update
    (gradients, clipping, optimizer step) and an evaluation batch. Each takes and returns its
    running sums, so adding them up is part of the compiled step rather than one more small graph
    to run after every batch."""

    def __init__(self, model, optimizer, task: Task, cfg: TrainConfig, backend: Backend, desc: str):
        self.model, self.optimizer, self.task, self.cfg, self.backend = (
            model,
            optimizer,
            task,
            cfg,
            backend,
        )
        # Graphs after each step's first call (which also creates the optimizer state), per batch
        # shape (a length bucket): a micro-batch adds to gradients that are None at the start of
        # an accumulation and exist later (two graphs); an update always finds them the same way.
        shapes = len(task.buckets.sizes) if task.buckets is not None else 1
        self.micro = backend.compile_step(self._micro, f"{desc}_micro", max_graphs=2 * shapes)
        self.update = backend.compile_step(self._update, f"{desc}_update", max_graphs=shapes)
        self.eval = backend.compile_step(self._eval, f"{desc}_eval", max_graphs=shapes)

    def _micro(self, batch: Batch, loss_sum: torch.Tensor) -> torch.Tensor:
        with self.backend.autocast():
            outputs = self.task.forward(self.model, batch)
            loss = self.task.loss(outputs.float(), batch).mean()
        self.backend.backward(loss / self.cfg.grad_accum_steps)
        return loss_sum + loss.detach()

    def _update(self, batch: Batch, loss_sum: torch.Tensor) -> torch.Tensor:
        loss_sum = self._micro(batch, loss_sum)
        if self.cfg.max_grad_norm:
            self.backend.clip_grad_norm(self.model, self.cfg.max_grad_norm)
        self.backend.optimizer_step(self.optimizer)
        self.optimizer.zero_grad(set_to_none=True)
        return loss_sum

    def _eval(self, batch: Batch, sums: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), self.backend.autocast():
            outputs = self.task.forward(self.model, batch).float()
        w = batch[WEIGHT]
        values = [self.task.loss(outputs, batch)]
        values += [fn(outputs, batch).float() for fn in self.task.metrics.values()]
        return sums + torch.stack([w.sum()] + [(v * w).sum() for v in values])


def fit(
    model: torch.nn.Module,
    train: Batch,
    val: Batch,
    task: Task,
    cfg: TrainConfig,
    backend: Backend,
    *,
    live_dir: Path | None = None,
    checkpoint: Path | None = None,
    fingerprint: str = "",
    desc: str = "train",
    max_epochs_this_run: int | None = None,
) -> FitResult:
    """Train ``model`` and return its best weights (by ``task.monitor`` on ``val``) and history.
    ``model`` itself ends holding the best weights, on every process, so a caller can go on to
    predict with it (processes other than the first never write a weights file to read back).

    With ``checkpoint``, the full state is saved after every epoch and a run whose checkpoint has
    the same ``fingerprint`` (params and input data) continues from it. ``max_epochs_this_run``
    stops after that many epochs, as if killed (used by tests of resuming).
    """
    check_tensors(train, "training split")
    check_tensors(val, "validation split")
    backend.seed(cfg.seed)
    batches = _Batcher(cfg, task, backend)
    model = backend.prepare_model(model)
    schedule = Schedule(lr_schedule(cfg, cfg.epochs * batches.steps_per_epoch(train)), backend)
    optimizer = backend.prepare_optimizer(build_optimizer(model.parameters(), cfg, schedule.holder))
    state = resume(checkpoint, fingerprint, model, optimizer, backend, desc)
    steps = _Steps(model, optimizer, task, cfg, backend, desc)
    curves = EpochLog(live_dir, backend.is_main, replay=state.history)
    # Run what the set-up left pending (the lr tensor, a loaded state) now, so that every epoch,
    # the first too, starts with the same pending graph (its zeroed sums) and compiles nothing new.
    backend.sync()

    resumed_epochs, compile_counts = len(state.history), []
    first = cfg.epochs + 1 if state.stopped_early else state.epoch + 1  # finished stays so
    for epoch in range(first, cfg.epochs + 1):
        loader = batches.train(train, epoch)
        train_loss, steps_taken, samples_per_sec = train_epoch(steps, schedule, loader, epoch, desc)
        row = {
            "epoch": epoch,
            "train/loss": train_loss,
            **evaluate(steps, batches.eval(val)),
            "lr": schedule.lr_at(steps_taken - 1),
            "samples_per_sec": samples_per_sec,
        }
        compile_counts.append(backend.compile_count())
        keep_the_best(state, row, model, task, cfg, backend, desc)
        curves.log(row)
        if checkpoint is not None and backend.is_main:
            save_checkpoint(checkpoint, state.checkpoint(fingerprint, model, optimizer, backend))
        if state.stopped_early or epoch - first + 1 == max_epochs_this_run:
            break
    curves.close()
    backend.unwrap(model).load_state_dict(state.best_weights())
    backend.barrier("fit_end")
    return FitResult.of(state, compile_counts, resumed_epochs)


class _Batcher:
    """The batches of every epoch. ``batch_size`` is the global batch: each process reads its
    share, so the number of steps and the schedule do not depend on how many processes or devices
    train."""

    def __init__(self, cfg: TrainConfig, task: Task, backend: Backend):
        self.cfg, self.task, self.backend = cfg, task, backend
        self.train_bs = backend.local_batch_size(cfg.batch_size, "the train batch_size")
        eval_bs = cfg.eval_batch_size or cfg.batch_size
        self.eval_bs = backend.local_batch_size(eval_bs, "the eval batch size", exact=False)

    def steps_per_epoch(self, data: Batch) -> int:
        steps = len(self.train(data, epoch=0)) // self.cfg.grad_accum_steps
        if steps < 1:
            raise UserError(
                f"one epoch is fewer batches than grad_accum_steps={self.cfg.grad_accum_steps}; "
                "lower it"
            )
        return steps

    def train(self, data: Batch, epoch: int) -> Batches:
        return self._batches(data, self.train_bs, True, epoch, self.task.transform)

    def eval(self, data: Batch) -> Batches:
        return self._batches(data, self.eval_bs, False, 0, None)

    def _batches(self, data, batch_size, train, epoch, transform) -> Batches:
        b = self.backend
        return Batches(
            data,
            batch_size,
            train=train,
            seed=self.cfg.seed,
            epoch=epoch,
            rank=b.rank,
            num_replicas=b.num_replicas,
            transform=transform,
            buckets=self.task.buckets,
        )


def train_epoch(
    steps: _Steps, schedule: Schedule, loader: Batches, epoch: int, desc: str
) -> tuple[float, int, float]:
    """One pass over the training batches: the mean loss, the optimizer steps taken so far and the
    samples per second. Every random stream (shuffle, augmentation, dropout)
    is a function of (seed, epoch), so a run resumed at any epoch boundary continues exactly as
    the uninterrupted run would. Dropout differs between processes; rank 0 draws what a single
    process would."""
    backend, cfg = steps.backend, steps.cfg
    backend.seed(cfg.seed * 1000 + epoch + 7_919 * backend.rank)
    steps.model.train()
    progress = StepProgress(
        desc,
        len(loader),
        loader.batch_size * backend.num_replicas,
        shown=backend.is_main,
        epoch=epoch,
        epochs=cfg.epochs,
    )
    step = (epoch - 1) * (len(loader) // cfg.grad_accum_steps)  # optimizer steps taken before
    loss_sum = torch.zeros((), device=backend.device)
    start = time.perf_counter()
    for i, batch in enumerate(backend.device_loader(loader)):
        is_update = (i + 1) % cfg.grad_accum_steps == 0
        if is_update:
            schedule.set(steps.optimizer, step)
            step += 1
        with backend.no_sync(steps.model, skip=not is_update):
            loss_sum = (steps.update if is_update else steps.micro)(batch, loss_sum)
        if progress.shows_loss and i % 20 == 0:
            backend.on_host(progress.show_loss(i + 1), loss_sum)
        progress.advance()
    backend.sync()
    seconds = time.perf_counter() - start
    progress.close()
    batches_seen = len(loader) * backend.num_replicas
    train_loss = float(backend.reduce_sum(loss_sum).cpu()) / batches_seen
    return train_loss, step, batches_seen * loader.batch_size / seconds


def evaluate(steps: _Steps, loader: Batches) -> dict[str, float]:
    """The weighted mean loss and metrics over ``loader``: one host transfer for all of them."""
    steps.model.eval()
    names = ["loss", *steps.task.metrics]
    sums = torch.zeros(len(names) + 1, device=steps.backend.device)
    for batch in steps.backend.device_loader(loader):
        sums = steps.eval(batch, sums)
    sums = steps.backend.reduce_sum(sums).cpu()
    return {f"val/{n}": float(sums[i + 1] / sums[0]) for i, n in enumerate(names)}


def keep_the_best(
    state: TrainingState,
    row: dict,
    model,
    task: Task,
    cfg: TrainConfig,
    backend: Backend,
    desc: str,
) -> None:
    """Record the epoch, keep the weights of the best one so far, and decide on stopping early."""
    epoch, value = int(row["epoch"]), row[f"val/{task.monitor}"]
    state.history.append(row)
    state.epoch = epoch
    if task.better(value, state.best_value(task)):
        state.best_epoch, state.best_state = epoch, _cpu_state(backend.unwrap(model))
    state.stopped_early = bool(cfg.patience and epoch - state.best_epoch >= cfg.patience)
    if backend.is_main:
        shown = "  ".join(f"{k} {v:.4g}" for k, v in row.items() if k not in ("epoch", "lr"))
        logger.info("%s epoch %d/%d  %s", desc, epoch, cfg.epochs, shown)
        if state.stopped_early:
            logger.info(
                "%s: no improvement in val/%s for %d epochs; stopping",
                desc,
                task.monitor,
                cfg.patience,
            )


def predict(
    model: torch.nn.Module,
    data: Batch,
    backend: Backend,
    batch_size: int,
    forward: Callable[[torch.nn.Module, Batch], torch.Tensor] = forward_x,
    desc: str = "predict",
    buckets: LengthBuckets | None = None,
) -> torch.Tensor:
    """Model outputs for every row of ``data``, in order, on the host (with ``buckets``: batches
    of one length bucket each, one graph per bucket, the outputs put back in row order)."""
    n = check_tensors(data, "prediction data")
    model = backend.prepare_model(model)
    model.eval()

    def step(batch: Batch) -> torch.Tensor:
        with torch.no_grad(), backend.autocast():
            return forward(model, batch).float()

    shapes = len(buckets.sizes) if buckets is not None else 1
    compiled = backend.compile_step(step, desc, max_graphs=shapes)
    local_bs = backend.local_batch_size(batch_size, "the prediction batch size", exact=False)
    loader = Batches(
        data,
        local_bs,
        train=False,
        rank=backend.rank,
        num_replicas=backend.num_replicas,
        buckets=buckets,
    )
    # Progress beside the loop, not a bar around the device loader: tqdm.auto iterates what it
    # wraps twice, and each pass over an XLA device loader starts its own background transfer of
    # every batch.
    progress = StepProgress(
        desc, len(loader), local_bs * backend.num_replicas, shown=backend.is_main
    )
    outputs = []
    for batch in backend.device_loader(loader):
        outputs.append(compiled(batch))
        progress.advance()
    progress.close()
    local = torch.cat(outputs)
    everything = backend.gather(
        local
    ).cpu()  # [process, batch, row]: one collective for all batches
    if backend.num_replicas > 1:  # back to row order: global batch k is every process's batch k
        rest = everything.shape[1:]
        everything = everything.view(backend.num_replicas, len(loader), local_bs, *rest).transpose(
            0, 1
        )
        everything = everything.reshape(-1, *rest)
    rows = loader.rows()  # the padding of the last global batch (-1) is dropped
    ordered = everything.new_empty((n, *everything.shape[1:]))
    ordered[rows[rows >= 0]] = everything[rows >= 0]
    return ordered
