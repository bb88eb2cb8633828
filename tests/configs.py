"""Params for tests that build them in code instead of reading params.yaml (the only place the
pipeline's values live): the loop's neutral settings, overridden by what a test is about."""

from xlalab.engine.settings import Runtime, TrainConfig

LOOP = dict(
    weight_decay=0.0,
    optimizer="adamw",
    scheduler="cosine",
    warmup_fraction=0.0,
    grad_accum_steps=1,
    max_grad_norm=None,
    patience=None,
    eval_batch_size=None,
)


def train_config(**values) -> TrainConfig:
    return TrainConfig(**{**LOOP, **values})


def runtime(**values) -> Runtime:
    return Runtime(
        **{
            "backend": "auto",
            "precision": "no",
            "compile": False,
            "xla_cache": False,
            "cpu_threads": None,
            "processes": 1,
            **values,
        }
    )
