"""A tiny project's train stage, run as a script by tests/test_scale.py in a scratch directory:
``python scale_job.py`` with ``runtime.processes: N`` starts N processes through the same launcher
as ``python -m xlalab``; under ``accelerate launch`` (several machines) it runs as one of them.

A file named ``kill-after-epoch-1`` in the working directory makes rank 0 kill itself (SIGKILL, no
clean-up) in the second epoch, once the first epoch's checkpoint exists: a crash mid-run.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import torch

from xlalab.engine.loop import TrainConfig, predict
from xlalab.engine.runtime import Runtime, make_backend
from xlalab.engine.settings import Params
from xlalab.engine.task import Task
from xlalab.pipeline import log
from xlalab.pipeline.artifacts import write_summary
from xlalab.pipeline.contract import Paths, Project
from xlalab.pipeline.launch import inside_launch, launch
from xlalab.pipeline.params import load_params
from xlalab.pipeline.runner import run_stage
from xlalab.pipeline.training import fit_and_save

KILL_SWITCH = Path("kill-after-epoch-1")


class TrainParams(Params):
    seed: int
    train: TrainConfig
    runtime: Runtime


def blobs(n: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(3, 8, generator=torch.Generator().manual_seed(0)) * 2
    y = torch.arange(n) % 3
    return {"x": centers[y] + torch.randn(n, 8, generator=g), "y": y}


class Net(torch.nn.Module):
    def __init__(self, checkpoint: Path):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Linear(32, 3)
        )
        self.checkpoint = checkpoint

    def forward(self, x):
        if (
            self.training
            and KILL_SWITCH.exists()
            and self.checkpoint.exists()
            and os.environ.get("RANK") == "0"
        ):
            os.kill(os.getpid(), signal.SIGKILL)
        return self.layers(x)


def train(p: TrainParams, paths: Paths) -> None:
    backend = make_backend(p.runtime)
    cfg = p.train.seeded(p.seed)
    torch.manual_seed(p.seed)
    model = Net(paths.checkpoints / "toy.ckpt")
    task = Task(
        loss=lambda out, b: torch.nn.functional.cross_entropy(out, b["y"], reduction="none"),
        metrics={"acc": lambda out, b: (out.argmax(-1) == b["y"]).float()},
        monitor="acc",
        mode="max",
    )
    # 389 training rows: not a whole number of global batches; 101 validation rows: a padded last
    # batch
    val = blobs(101, 2)
    entry = fit_and_save(
        "toy", model, blobs(389, 1), val, task, cfg, backend, paths, config={}, fingerprint="toy-1"
    )
    # Prediction across the processes (batches of 40: each process 20 rows, the last global batch
    # padded) must give every row once, in order: compare with this process's own forward pass.
    fresh = Net(paths.checkpoints / "toy.ckpt")
    fresh.load_state_dict(model.state_dict())
    gathered = predict(fresh, val, backend, batch_size=40)
    with torch.no_grad():
        in_order = bool(torch.allclose(gathered, fresh.eval().cpu()(val["x"]), atol=1e-5))
    write_summary(paths, {"toy": entry}, backend.describe(), predictions_in_order=in_order)


class ToyProject(Project):
    def function(self, stage):
        return {"train": train}[stage.name]


PROJECT = ToyProject(
    "toy", params=dict.fromkeys(("download", "featurize", "train", "evaluate", "plot"), TrainParams)
)


def main() -> int:
    runtime = Runtime.model_validate(load_params().get("runtime", {}))
    if runtime.processes > 1 and not inside_launch():
        return launch(runtime.processes, [__file__])
    Path(PROJECT.paths.features).mkdir(
        parents=True, exist_ok=True
    )  # the train stage's declared input
    print("wrote", *run_stage(PROJECT, "train"))
    return 0


if __name__ == "__main__":
    log.setup(0)
    sys.exit(main())
