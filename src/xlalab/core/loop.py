"""The one training loop, read top to bottom: build, (resume), train an epoch, evaluate,
log, checkpoint, keep the best weights. It runs unchanged on every backend in runtime.py.

XLA discipline kept here for every backend (it costs nothing on CPU or CUDA):
fixed batch shapes (data.Batches), no ``.item()`` inside a step (losses stay on the device and
reach the host through ``backend.on_host`` or once per epoch), and compiled steps whose graph
count is capped.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from .data import WEIGHT, Batch, Batches, Transform, check_tensors
from .errors import UserError
from .io import atomic_path
from .params import TrainConfig  # noqa: F401  (the loop's params; re-exported for callers)
from .runtime import Backend

@dataclass
class Task:
    """What the loop needs to know about a project's model.

    ``loss(outputs, batch)`` and every ``metrics[name](outputs, batch)`` return one value per row;
    the loop averages them (weighted, so eval padding counts for nothing).
    ``monitor`` names the validation value that picks the best epoch (``loss`` or a metric).
    """

    loss: Callable[[torch.Tensor, Batch], torch.Tensor]
    metrics: dict[str, Callable[[torch.Tensor, Batch], torch.Tensor]] = field(default_factory=dict)
    forward: Callable[[torch.nn.Module, Batch], torch.Tensor] = lambda model, batch: model(batch["x"])
    monitor: str = "loss"
    mode: str = "min"  # or "max"
    transform: Transform | None = None  # training-time augmentation

    def better(self, new: float, old: float | None) -> bool:
        return old is None or (new < old if self.mode == "min" else new > old)


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


def build_optimizer(params, cfg: TrainConfig, lr: float | torch.Tensor | None = None) -> torch.optim.Optimizer:
    """``lr``: the backend's hyperparameter holder (a device tensor on XLA); default ``cfg.lr``."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise UserError("the model has no trainable parameters; unfreeze something")
    lr = cfg.lr if lr is None else lr
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=cfg.weight_decay, nesterov=True)
    # capturable with a tensor lr: the step count and bias corrections stay on the device too,
    # instead of reaching the compiled step as new host floats every step.
    return torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay,
                             capturable=isinstance(lr, torch.Tensor))


def lr_schedule(cfg: TrainConfig, total_steps: int) -> Callable[[int], float]:
    """The learning rate of optimizer step ``step`` (0-based): linear warm-up, then the decay.
    A pure function of the step, so a resumed run needs only the number of steps taken."""
    warmup = int(cfg.warmup_fraction * total_steps)

    def lr_at(step: int) -> float:
        if step < warmup:
            return cfg.lr * (step + 1) / (warmup + 1)
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        if cfg.scheduler == "cosine":
            return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress))
        if cfg.scheduler == "linear":
            return cfg.lr * max(0.0, 1 - progress)
        return cfg.lr

    return lr_at


def _cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


class _EpochLog:
    """Receives per-epoch rows and writes them to DVCLive on the main process."""

    def __init__(self, live_dir: Path | None, enabled: bool):
        self.live = None
        if live_dir is not None and enabled:
            from dvclive import Live

            # dvcyaml=None: plots are declared in the root dvc.yaml. save_dvc_exp=False: the
            # pipeline, not the logger, decides what becomes an experiment.
            self.live = Live(str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None)

    def log(self, row: dict[str, float]) -> None:
        if self.live is None:
            return
        self.live.step = int(row["epoch"])
        for key, value in row.items():
            if key != "epoch":
                self.live.log_metric(key, value)
        self.live.next_step()

    def close(self) -> None:
        if self.live is not None:
            self.live.end()


CHECKPOINT_KEYS = ("fingerprint", "epoch", "model", "optimizer", "history", "best_state", "best_epoch",
                   "stopped_early")


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Tensors and plain containers only, so ``load_checkpoint`` can refuse anything else."""
    with atomic_path(path) as tmp:
        torch.save(_to_cpu(state), tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The state ``save_checkpoint`` wrote. ``weights_only=True``: unpickling never runs code from
    the file; a planted pickle, a truncated file or garbage is refused with one line."""
    def invalid(reason: str) -> UserError:
        return UserError(f"{path} is not a valid checkpoint ({reason}); delete it to train from scratch")

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - whatever the file holds, the answer is the same line
        reason = (str(e).strip().splitlines() or [""])[0][:160]
        raise invalid(f"{type(e).__name__}: {reason}" if reason else type(e).__name__) from None
    if not isinstance(state, dict) or any(key not in state for key in CHECKPOINT_KEYS):
        raise invalid(f"expected a dict with keys {', '.join(CHECKPOINT_KEYS)}")
    return state


def fit(model: torch.nn.Module, train: Batch, val: Batch, task: Task, cfg: TrainConfig, backend: Backend,
        *, live_dir: Path | None = None, checkpoint: Path | None = None, fingerprint: str = "",
        desc: str = "train", max_epochs_this_run: int | None = None) -> FitResult:
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
    # batch_size is the global batch: each process reads its share, so the number of steps and
    # the schedule do not depend on how many processes or devices train.
    train_bs = backend.local_batch_size(cfg.batch_size, "the train batch_size")
    eval_bs = backend.local_batch_size(cfg.eval_batch_size or cfg.batch_size, "the eval batch size", exact=False)

    def batches(data: Batch, is_train: bool, epoch: int) -> Batches:
        return Batches(data, train_bs if is_train else eval_bs, train=is_train, seed=cfg.seed, epoch=epoch,
                       rank=backend.rank, num_replicas=backend.num_replicas,
                       transform=task.transform if is_train else None)

    steps_per_epoch = len(batches(train, True, 0)) // cfg.grad_accum_steps
    if steps_per_epoch < 1:
        raise UserError(f"one epoch is fewer batches than grad_accum_steps={cfg.grad_accum_steps}; lower it")

    model = backend.prepare_model(model)
    # The learning rate changes every step, so the compiled step reads it as device data (a
    # tensor on XLA, updated in place before each step); see Backend.hyperparameter.
    lr_at = lr_schedule(cfg, cfg.epochs * steps_per_epoch)
    lr = backend.hyperparameter(lr_at(0))
    optimizer = backend.prepare_optimizer(build_optimizer(model.parameters(), cfg, lr))

    def set_lr(step: int) -> None:
        nonlocal lr
        lr = backend.update_hyperparameter(lr, lr_at(step))
        for group in optimizer.param_groups:  # also replaces the lr a loaded optimizer state brought
            group["lr"] = lr

    history: list[dict[str, float]] = []
    compile_counts: list[int | None] = []
    best_state, best_value, best_epoch, start_epoch, stopped_early = None, None, 0, 1, False
    if checkpoint is not None and checkpoint.exists():
        state = load_checkpoint(checkpoint)
        if state["fingerprint"] == fingerprint:
            backend.unwrap(model).load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            history, best_state, best_epoch = state["history"], state["best_state"], state["best_epoch"]
            best_value = history[best_epoch - 1][f"val/{task.monitor}"] if best_epoch else None
            stopped_early = state["stopped_early"]
            start_epoch = cfg.epochs + 1 if stopped_early else state["epoch"] + 1  # a finished run stays finished
            if backend.is_main:
                print(f"{desc}: resuming from {checkpoint} after epoch {state['epoch']}", file=sys.stderr)

    resumed_epochs = len(history)

    # --- the steps, compiled on XLA -------------------------------------------------------
    # Each takes and returns its running sums, so adding them up is part of the compiled step
    # rather than one more small graph to run after every batch.
    def micro_step(batch: Batch, loss_sum: torch.Tensor) -> torch.Tensor:
        with backend.autocast():
            outputs = task.forward(model, batch)
            loss = task.loss(outputs.float(), batch).mean()
        backend.backward(loss / cfg.grad_accum_steps)
        return loss_sum + loss.detach()

    def update_step(batch: Batch, loss_sum: torch.Tensor) -> torch.Tensor:
        loss_sum = micro_step(batch, loss_sum)
        if cfg.max_grad_norm:
            backend.clip_grad_norm(model, cfg.max_grad_norm)
        backend.optimizer_step(optimizer)
        optimizer.zero_grad(set_to_none=True)
        return loss_sum

    def eval_step(batch: Batch, sums: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), backend.autocast():
            outputs = task.forward(model, batch).float()
        w = batch[WEIGHT]
        values = [task.loss(outputs, batch)] + [fn(outputs, batch).float() for fn in task.metrics.values()]
        return sums + torch.stack([w.sum()] + [(v * w).sum() for v in values])

    # Two graphs each: the first optimizer step also creates the optimizer state.
    compiled_micro = backend.compile_step(micro_step, f"{desc}_micro", max_graphs=2)
    compiled_update = backend.compile_step(update_step, f"{desc}_update", max_graphs=2)
    compiled_eval = backend.compile_step(eval_step, f"{desc}_eval", max_graphs=1)

    def evaluate() -> dict[str, float]:
        model.eval()
        names = ["loss", *task.metrics]
        sums = torch.zeros(len(names) + 1, device=backend.device)
        for batch in backend.device_loader(batches(val, False, 0)):
            sums = compiled_eval(batch, sums)
        sums = backend.reduce_sum(sums).cpu()  # the one host transfer of evaluation
        return {f"val/{n}": float(sums[i + 1] / sums[0]) for i, n in enumerate(names)}

    log = _EpochLog(live_dir, backend.is_main)
    for row in history:  # a resumed run re-logs what the interrupted one had logged
        log.log(row)
    # Run what the set-up left pending (the lr tensor, a loaded state) now, so that every epoch,
    # the first too, starts with the same pending graph (its zeroed sums) and compiles nothing new.
    backend.sync()

    for epoch in range(start_epoch, cfg.epochs + 1):
        # Every random stream (shuffle, augmentation, dropout) is a function of (seed, epoch), so a
        # run resumed at any epoch boundary continues exactly as the uninterrupted run would.
        # Dropout differs between processes; rank 0 draws what a single process would.
        backend.seed(cfg.seed * 1000 + epoch + 7_919 * backend.rank)
        model.train()
        loader = batches(train, True, epoch)
        bar = tqdm(total=len(loader), desc=f"{desc} {epoch}/{cfg.epochs}", leave=False, dynamic_ncols=True,
                   disable=None if backend.is_main else True, file=sys.stderr)
        step = (epoch - 1) * steps_per_epoch  # optimizer steps taken before this epoch
        loss_sum = torch.zeros((), device=backend.device)
        start = time.perf_counter()
        for i, batch in enumerate(backend.device_loader(loader)):
            is_update = (i + 1) % cfg.grad_accum_steps == 0
            if is_update:
                set_lr(step)
                step += 1
            with backend.no_sync(model, skip=not is_update):
                loss_sum = (compiled_update if is_update else compiled_micro)(batch, loss_sum)
            if bar.disable is False and i % 20 == 0:
                backend.on_host(lambda t, n=i + 1: bar.set_postfix(loss=f"{float(t) / n:.4f}", refresh=False),
                                loss_sum)
            bar.update(1)
        backend.sync()
        seconds = time.perf_counter() - start
        bar.close()
        train_loss = float(backend.reduce_sum(loss_sum).cpu()) / (len(loader) * backend.num_replicas)
        row = {"epoch": epoch, "train/loss": train_loss, **evaluate(), "lr": lr_at(step - 1),
               "samples_per_sec": len(loader) * train_bs * backend.num_replicas / seconds}
        history.append(row)
        compile_counts.append(backend.compile_count())

        value = row[f"val/{task.monitor}"]
        if task.better(value, best_value):
            best_value, best_epoch, best_state = value, epoch, _cpu_state(backend.unwrap(model))
        if backend.is_main:
            shown_metrics = "  ".join(f"{k} {v:.4g}" for k, v in row.items() if k not in ("epoch", "lr"))
            print(f"{desc} epoch {epoch}/{cfg.epochs}  {shown_metrics}", file=sys.stderr)
        log.log(row)

        stopped_early = bool(cfg.patience and epoch - best_epoch >= cfg.patience)
        if checkpoint is not None and backend.is_main:
            # The RNG needs no saving (it is re-seeded from (seed, epoch)), nor the schedule (a
            # function of the step count, which the epoch gives).
            save_checkpoint(checkpoint, {
                "fingerprint": fingerprint, "epoch": epoch, "model": backend.unwrap(model).state_dict(),
                "optimizer": optimizer.state_dict(), "history": history, "best_state": best_state,
                "best_epoch": best_epoch, "stopped_early": stopped_early})
        if stopped_early:
            if backend.is_main:
                print(f"{desc}: no improvement in val/{task.monitor} for {cfg.patience} epochs; stopping",
                      file=sys.stderr)
            break
        if max_epochs_this_run is not None and epoch - start_epoch + 1 >= max_epochs_this_run:
            break
    log.close()
    backend.unwrap(model).load_state_dict(best_state)
    backend.barrier("fit_end")
    return FitResult(best_state=best_state, best_epoch=best_epoch, history=history,
                     stopped_early=stopped_early, compile_counts=compile_counts,
                     resumed_epochs=resumed_epochs)


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def predict(model: torch.nn.Module, data: Batch, backend: Backend, batch_size: int,
            forward: Callable[[torch.nn.Module, Batch], torch.Tensor] = Task.__dataclass_fields__["forward"].default,
            desc: str = "predict") -> torch.Tensor:
    """Model outputs for every row of ``data``, in order, on the host."""
    n = check_tensors(data, "prediction data")
    model = backend.prepare_model(model)
    model.eval()

    def step(batch: Batch) -> torch.Tensor:
        with torch.no_grad(), backend.autocast():
            return forward(model, batch).float()

    compiled = backend.compile_step(step, desc, max_graphs=1)
    local_bs = backend.local_batch_size(batch_size, "the prediction batch size", exact=False)
    loader = Batches(data, local_bs, train=False, rank=backend.rank, num_replicas=backend.num_replicas)
    # A bar beside the loop, not around the device loader: tqdm.auto iterates what it wraps twice,
    # and each pass over an XLA device loader starts its own background transfer of every batch.
    bar = tqdm(total=len(loader), desc=desc, leave=False, disable=None if backend.is_main else True)
    outputs = []
    for batch in backend.device_loader(loader):
        outputs.append(compiled(batch))
        bar.update(1)
    bar.close()
    local = torch.cat(outputs)
    everything = backend.gather(local).cpu()  # [process, batch, row]: one collective for all batches
    if backend.num_replicas > 1:  # back to row order: global batch k is every process's batch k
        rest = everything.shape[1:]
        everything = everything.view(backend.num_replicas, len(loader), local_bs, *rest).transpose(0, 1)
        everything = everything.reshape(-1, *rest)
    return everything[:n]  # the padding of the last global batch, dropped
