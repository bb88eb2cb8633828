"""The training loop on both backends: it learns, it is deterministic, it resumes, and on XLA it
stops compiling after the first epoch."""

import pytest
import torch
from configs import train_config

from xlalab.engine.batches import Batches
from xlalab.engine.loop import fit, predict
from xlalab.engine.task import Task
from xlalab.errors import UserError


def blobs(n=384, classes=3, dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, dim, generator=g) * 3
    y = torch.arange(n) % classes
    x = centers[y] + torch.randn(n, dim, generator=g)
    return {"x": x, "y": y}


def classifier(dim=8, classes=3):
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(dim, 32),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.1),
        torch.nn.Linear(32, classes),
    )


TASK = Task(
    loss=lambda out, b: torch.nn.functional.cross_entropy(out, b["y"], reduction="none"),
    metrics={"acc": lambda out, b: (out.argmax(-1) == b["y"]).float()},
    monitor="acc",
    mode="max",
)


def cfg(**kw):
    base = dict(epochs=3, batch_size=32, lr=0.01, scheduler="cosine", warmup_fraction=0.1, seed=1)
    base.update(kw)
    return train_config(**base)


def test_learns_on_both_backends(backend):
    train, val = blobs(seed=0), blobs(n=100, seed=0)  # same centers, 100 rows: a ragged last batch
    result = fit(classifier(), train, val, TASK, cfg(), backend)
    assert result.history[-1]["val/acc"] > 0.9
    assert result.history[-1]["train/loss"] < result.history[0]["train/loss"]
    assert result.best["val/acc"] == max(r["val/acc"] for r in result.history)


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
@pytest.mark.parametrize("scheduler", ["cosine", "linear", "constant"])
def test_xla_compile_count_is_flat_after_first_epoch(xla_backend, optimizer, scheduler):
    # cifar10's shape of run: a frozen first layer, AdamW lr 3e-3 with weight decay 1e-4 and
    # warm-up, an eval batch size of its own. Near the end of a decaying schedule
    # 1 - lr * weight_decay rounds to 1.0 in float32, which torch_xla would bake into the graph
    # as a constant (a recompile) if the lr reached the step as a Python float.
    model = classifier()
    model[0].requires_grad_(False)
    config = cfg(
        epochs=4,
        lr=3e-3 if optimizer == "adamw" else 0.05,
        weight_decay=1e-4,
        optimizer=optimizer,
        scheduler=scheduler,
        warmup_fraction=0.1,
        grad_accum_steps=2,
        max_grad_norm=1.0,
        eval_batch_size=64,
    )
    result = fit(model, blobs(), blobs(n=100), TASK, config, xla_backend)
    counts = result.compile_counts
    assert counts[0] > 0
    assert counts[1:] == [counts[0]] * 3, f"XLA recompiled after warm-up: {counts}"
    assert result.history[-1]["val/acc"] > 0.8


def test_xla_step_counts_graphs_after_its_first_call(xla_backend):
    """A compiled step's first call may trace one-time set-up (an optimizer's state, a scanned
    loop's capture) without counting; after it, a second kind of graph is still an error."""
    calls = []

    def step(x):
        calls.append(len(calls))
        if len(calls) == 1:
            torch.zeros(3, device=x.device).sum()  # set-up ops only the first call traces
        return x * 2

    compiled = xla_backend.compile_step(step, "first_call_free", max_graphs=1)
    x = torch.ones(4, device=xla_backend.device)
    for _ in range(3):
        compiled(x)
    with pytest.raises(RuntimeError, match="Maximum number of different graphs"):
        compiled(torch.ones(5, device=xla_backend.device))


def test_same_params_same_numbers_on_cpu(accelerate_backend):
    a = fit(classifier(), blobs(), blobs(n=100), TASK, cfg(), accelerate_backend)
    b = fit(classifier(), blobs(), blobs(n=100), TASK, cfg(), accelerate_backend)
    strip = lambda h: [{k: v for k, v in r.items() if k != "samples_per_sec"} for r in h]  # noqa: E731
    assert strip(a.history) == strip(b.history)
    assert all(torch.equal(a.best_state[k], b.best_state[k]) for k in a.best_state)


def test_killed_run_resumes_to_the_same_result(accelerate_backend, tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    full = fit(classifier(), blobs(), blobs(n=100), TASK, cfg(epochs=4), accelerate_backend)
    first = fit(
        classifier(),
        blobs(),
        blobs(n=100),
        TASK,
        cfg(epochs=4),
        accelerate_backend,
        checkpoint=ckpt,
        fingerprint="f1",
        max_epochs_this_run=2,
    )
    assert len(first.history) == 2 and ckpt.exists()
    resumed = fit(
        classifier(),
        blobs(),
        blobs(n=100),
        TASK,
        cfg(epochs=4),
        accelerate_backend,
        checkpoint=ckpt,
        fingerprint="f1",
    )
    assert [r["val/loss"] for r in resumed.history] == [r["val/loss"] for r in full.history]
    assert all(torch.equal(full.best_state[k], resumed.best_state[k]) for k in full.best_state)


class _PlantedPickle:
    """Unpickling it creates ``marker``: what a malicious file in place of a checkpoint could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("content", ["planted", "garbage", "not a dict"])
def test_a_file_that_is_not_a_checkpoint_is_refused_without_running_it(
    accelerate_backend, tmp_path, content
):
    ckpt, marker = tmp_path / "model.ckpt", tmp_path / "code-ran"
    if content == "planted":
        torch.save({"fingerprint": "f", "payload": _PlantedPickle(marker)}, ckpt)
    elif content == "garbage":
        ckpt.write_bytes(b"\x00not a checkpoint at all" * 10)
    else:
        torch.save([torch.zeros(2)], ckpt)
    with pytest.raises(
        UserError, match=r"model.ckpt is not a valid checkpoint \(.+\); delete it"
    ) as error:
        fit(
            classifier(),
            blobs(),
            blobs(n=100),
            TASK,
            cfg(epochs=1),
            accelerate_backend,
            checkpoint=ckpt,
            fingerprint="f",
        )
    assert "\n" not in str(error.value)
    assert not marker.exists(), "loading the checkpoint ran code from the file"


def test_checkpoint_of_other_params_is_not_resumed(accelerate_backend, tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    fit(
        classifier(),
        blobs(),
        blobs(n=100),
        TASK,
        cfg(epochs=2),
        accelerate_backend,
        checkpoint=ckpt,
        fingerprint="old",
    )
    again = fit(
        classifier(),
        blobs(),
        blobs(n=100),
        TASK,
        cfg(epochs=2, lr=0.02),
        accelerate_backend,
        checkpoint=ckpt,
        fingerprint="new",
    )
    assert len(again.history) == 2  # trained from scratch, both epochs


def test_early_stopping_and_a_stopped_run_stays_stopped(accelerate_backend, tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    result = fit(
        classifier(),
        blobs(),
        blobs(n=100),
        TASK,
        cfg(epochs=30, lr=1e-12, patience=2),
        accelerate_backend,
        checkpoint=ckpt,
        fingerprint="f",
    )
    assert result.stopped_early and len(result.history) == 3
    again = fit(
        classifier(),
        blobs(),
        blobs(n=100),
        TASK,
        cfg(epochs=30, lr=1e-12, patience=2),
        accelerate_backend,
        checkpoint=ckpt,
        fingerprint="f",
    )
    assert again.stopped_early and again.history == result.history


def test_predict_returns_every_row_in_order(backend):
    data = blobs(n=70)
    model = classifier().eval()
    expected = model(data["x"])
    got = predict(model, data, backend, batch_size=32)
    assert got.shape == (70, 3)
    torch.testing.assert_close(got, expected.detach(), rtol=1e-4, atol=1e-4)


def test_batches_have_fixed_shapes_and_pad_eval_with_zero_weight():
    data = blobs(n=70)
    train = list(Batches(data, 32, train=True, seed=0, epoch=1))
    assert [b["x"].shape[0] for b in train] == [32, 32]  # ragged 6 rows dropped
    evals = list(Batches(data, 32, train=False))
    assert [b["x"].shape[0] for b in evals] == [32, 32, 32]
    assert evals[-1]["weight"].sum() == 70 - 64 and evals[0]["weight"].sum() == 32


def test_batches_reshuffle_per_epoch_and_split_replicas_disjointly():
    data = {"i": torch.arange(64)}
    e1 = torch.cat([b["i"] for b in Batches(data, 8, train=True, epoch=1)])
    e2 = torch.cat([b["i"] for b in Batches(data, 8, train=True, epoch=2)])
    assert not torch.equal(e1, e2) and sorted(e1.tolist()) == list(range(64))
    r0 = torch.cat([b["i"] for b in Batches(data, 8, train=True, epoch=1, rank=0, num_replicas=2)])
    r1 = torch.cat([b["i"] for b in Batches(data, 8, train=True, epoch=1, rank=1, num_replicas=2)])
    assert set(r0.tolist()).isdisjoint(r1.tolist()) and len(r0) == len(r1) == 32


def test_too_little_data_is_a_clear_error():
    with pytest.raises(UserError, match="fewer than one batch"):
        Batches(blobs(n=10), 32, train=True)
    with pytest.raises(UserError, match="empty"):
        Batches({"x": torch.zeros(0, 3)}, 4, train=False)


LOSS_TASK = Task(loss=TASK.loss, metrics=TASK.metrics)  # monitors val/loss (min)


def test_settled_means_the_last_epoch_barely_moved_the_monitored_value():
    from xlalab.pipeline.training import settle_note

    rows = lambda *values: [{"val/loss": v, "val/acc": 1 - v} for v in values]  # noqa: E731
    assert settle_note(rows(1.0, 0.5, 0.4), LOSS_TASK, stopped_early=False).startswith(
        "training had not settled: val/loss still improved by 20.0% in the last epoch (0.5 -> 0.4)"
    )
    assert settle_note(rows(1.0, 0.5, 0.497), LOSS_TASK, stopped_early=False) is None  # 0.6%
    assert (
        settle_note(rows(1.0, 0.5, 0.6), LOSS_TASK, stopped_early=False) is None
    )  # got worse: past its best
    assert settle_note(rows(1.0, 0.5, 0.4), LOSS_TASK, stopped_early=True) is None
    assert "one epoch" in settle_note(rows(0.5), LOSS_TASK, stopped_early=False)
    assert "val/acc still improved" in settle_note(
        rows(0.9, 0.8), TASK, stopped_early=False
    )  # mode max


def test_fit_and_save_records_and_warns_when_training_stopped_before_it_settled(
    accelerate_backend, tmp_path, monkeypatch, capsys
):
    from xlalab.pipeline.contract import Paths
    from xlalab.pipeline.training import fit_and_save

    monkeypatch.chdir(tmp_path)
    paths = Paths.of("toy")
    for folder in (paths.model, paths.live, paths.checkpoints):
        folder.mkdir(parents=True)
    short = fit_and_save(
        "net",
        classifier(),
        blobs(),
        blobs(n=100),
        LOSS_TASK,
        cfg(epochs=2, lr=1e-3),
        accelerate_backend,
        paths,
        config={},
        fingerprint="short",
    )
    assert short["settled"] is False and "val/loss still improved" in short["settle_note"]
    assert f"warning: net: {short['settle_note']}" in capsys.readouterr().err
    # the same model trained to the end of a cosine schedule: the last epoch barely moves it
    long = fit_and_save(
        "net",
        classifier(),
        blobs(),
        blobs(n=100),
        LOSS_TASK,
        cfg(epochs=10, lr=0.01),
        accelerate_backend,
        paths,
        config={},
        fingerprint="long",
    )
    assert long["settled"] is True and long["settle_note"] is None
    assert "warning" not in capsys.readouterr().err


def test_fit_and_save_leaves_the_best_weights_in_the_model_on_every_process(
    accelerate_backend, tmp_path, monkeypatch
):
    """A stage may go on to predict with the model it trained (housing prices Kaggle's test file
    with
    its MLP). Processes other than the first write no weights file, so the model itself must hold
    the best weights on return, not those of the last epoch."""
    from xlalab.pipeline.artifacts import load_weights, weights_file
    from xlalab.pipeline.contract import Paths
    from xlalab.pipeline.training import fit_and_save

    monkeypatch.chdir(tmp_path)
    paths = Paths.of("toy")
    for folder in (paths.model, paths.live, paths.checkpoints):
        folder.mkdir(parents=True)
    # a constant, large LR on a small validation split: the last epoch is not the best one
    rows = blobs(n=126)
    train, val = ({k: v[:96] for k, v in rows.items()}, {k: v[96:] for k, v in rows.items()})
    setup = dict(
        task=LOSS_TASK,
        cfg=cfg(epochs=8, lr=0.3, scheduler="constant", warmup_fraction=0.0),
        backend=accelerate_backend,
        paths=paths,
        config={},
        fingerprint="best",
    )
    main = classifier()
    entry = fit_and_save("net", main, train, val, **setup)
    assert entry["best_epoch"] < entry["epochs_run"]
    saved = load_weights(weights_file(paths.model, "net"))
    assert all(torch.equal(saved[k], v) for k, v in main.state_dict().items())

    weights_file(paths.model, "net").unlink()
    monkeypatch.setattr(accelerate_backend, "is_main", False)
    other = classifier()
    fit_and_save("net", other, train, val, **setup)
    assert not weights_file(paths.model, "net").exists()
    assert all(torch.equal(saved[k], v) for k, v in other.state_dict().items())


def test_only_the_first_process_says_the_verdict(monkeypatch, capsys):
    from xlalab.pipeline.log import say_last

    monkeypatch.setenv("RANK", "1")
    say_last("verdict: x")
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("RANK", "0")
    say_last("verdict: x")
    assert capsys.readouterr().err == "verdict: x\n"
