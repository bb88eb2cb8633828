"""The featurize stage: one scikit-learn ColumnTransformer, learned on training traffic only.

* categorical fields are one-hot encoded over the categories seen in training; categories never
  seen there (or rarer than ``min_category_count``) become "other";
* non-negative counts and byte totals (columns that exceed 1 in training) go through log1p, since
  they span many orders of magnitude; rates in [0, 1] are left as they are;
* missing values (CIC-IDS2017's Infinity/NaN) get the median of normal training traffic;
* the scaler (and the imputer) are fitted on NORMAL training traffic only, so no attack or test
  statistic leaks into the features.

Every column of the source is transformed; ``meta.json`` says which output columns belong to each
feature set, so the detectors and the feature-set study pick their columns from one matrix.
Test traffic streams through in chunks into a memory-mapped ``.npy``, so millions of rows fit.
"""

from __future__ import annotations

import logging
import sys

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from tqdm.auto import tqdm

from ..core import runner
from ..core.errors import UserError
from ..core.io import read_json, write_json
from ..core.project import Paths
from .project import PROJECT, FeaturizeParams

logger = logging.getLogger(__name__)

OTHER = "other"
META_COLUMNS = ["attack", "category", "is_attack", "time"]


def read_split(paths: Paths, split: str, card: dict, chunk_rows: int):
    return pd.read_csv(
        paths.raw / f"{split}.csv",
        chunksize=chunk_rows,
        dtype={c: str for c in card["categorical"]} | {"attack": str, "category": str},
        keep_default_na=False,
        na_values=[""],
        low_memory=False,
    )


def fold_unseen(categories: dict[str, list[str]]) -> FunctionTransformer:
    """Values outside the training categories become "other", before one-hot encoding."""

    def fold(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.astype(str)
        return pd.DataFrame(
            {c: frame[c].where(frame[c].isin(categories[c]), OTHER) for c in frame.columns}
        )

    return FunctionTransformer(fold, feature_names_out="one-to-one")


def build_transformer(
    numeric: list[str], log_columns: list[str], categories: dict[str, list[str]]
) -> ColumnTransformer:
    linear = [c for c in numeric if c not in log_columns]
    parts = []
    if log_columns:
        parts.append(
            (
                "log",
                make_pipeline(
                    SimpleImputer(strategy="median", keep_empty_features=True),
                    FunctionTransformer(np.log1p, feature_names_out="one-to-one"),
                    StandardScaler(),
                ),
                log_columns,
            )
        )
    if linear:
        parts.append(
            (
                "num",
                make_pipeline(
                    SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()
                ),
                linear,
            )
        )
    if categories:
        encoder = OneHotEncoder(
            categories=[categories[c] + [OTHER] for c in categories],
            sparse_output=False,
            dtype=np.float32,
        )
        parts.append(("cat", make_pipeline(fold_unseen(categories), encoder), list(categories)))
    return ColumnTransformer(parts, verbose_feature_names_out=True)


def column_groups(names: list[str], groups: dict[str, list[str]]) -> dict[str, list[int]]:
    """Output column indices per feature set (a source column's one-hot columns go with it)."""
    source_of = []
    for name in names:
        kind, column = name.split("__", 1)
        if (
            kind == "cat"
        ):  # "cat__service_http": the longest categorical source column it starts with
            column = max(
                (c for g in groups.values() for c in g if column.startswith(f"{c}_")), key=len
            )
        source_of.append(column)
    return {g: [i for i, c in enumerate(source_of) if c in set(cols)] for g, cols in groups.items()}


def featurize(p: FeaturizeParams, paths: Paths) -> None:
    f = p.featurize
    card = read_json(paths.card)
    if f.feature_set not in card["groups"]:
        raise UserError(
            f"traffic.featurize.feature_set {f.feature_set!r} is not defined for {card['source']}; "
            f"it has {', '.join(card['groups'])}"
        )
    features, categorical = card["features"], card["categorical"]
    numeric = [c for c in features if c not in categorical]
    train_counts = card["splits"]["train"]
    pool_size = train_counts["normal"] if f.fit_on == "normal" else train_counts["rows"]
    keep = min(1.0, f.max_fit_rows / pool_size)  # a seeded sample when training traffic is larger
    rng = np.random.default_rng(p.seed)

    # One pass over training traffic: category counts (all of it) and the rows the detectors learn
    # from.
    seen: dict[str, pd.Series] = {c: pd.Series(dtype=float) for c in categorical}
    kept = []
    for chunk in read_split(paths, "train", card, f.chunk_rows):
        for c in categorical:
            seen[c] = seen[c].add(chunk[c].astype(str).value_counts(), fill_value=0)
        pool = chunk if f.fit_on == "all" else chunk[chunk["is_attack"] == 0]
        kept.append(pool[rng.random(len(pool)) < keep])
    train = pd.concat(kept, ignore_index=True)
    normal = train[train["is_attack"] == 0]
    if len(normal) < 10:
        raise UserError(
            f"only {len(normal)} normal training rows were kept; the detectors need normal traffic "
            "(raise traffic.featurize.max_fit_rows or check the labels)"
        )
    fit_normal, val = train_test_split(normal, test_size=f.val_fraction, random_state=p.seed)
    fit_rows = (
        pd.concat([fit_normal, train[train["is_attack"] == 1]]) if f.fit_on == "all" else fit_normal
    )

    categories = {
        c: sorted(str(v) for v, n in seen[c].items() if n >= f.min_category_count and v != OTHER)
        for c in categorical
    }
    log_columns = [c for c in numeric if train[c].min() >= 0 and train[c].max() > 1]
    transformer = build_transformer(numeric, log_columns, categories).fit(fit_normal[features])
    missing = int(fit_normal[numeric].isna().sum().sum())
    if missing:
        logger.warning(
            f"{missing} missing or infinite values in normal training traffic were replaced by the "
            "column median"
        )
    names = list(transformer.get_feature_names_out())
    groups = column_groups(names, card["groups"])

    def transform(frame: pd.DataFrame) -> np.ndarray:
        return transformer.transform(frame[features]).astype(np.float32)

    np.save(paths.features / "fit.npy", transform(fit_rows))
    np.save(paths.features / "fit_is_attack.npy", fit_rows["is_attack"].to_numpy(np.int8))
    np.save(paths.features / "val.npy", transform(val))

    n_test = card["splits"]["test"]["rows"]
    test = np.lib.format.open_memmap(
        paths.features / "test.npy", mode="w+", dtype=np.float32, shape=(n_test, len(names))
    )
    meta_file = paths.features / "test_meta.csv"
    start = 0
    with tqdm(
        total=n_test, desc="featurize test", unit=" rows", file=sys.stderr, disable=None
    ) as bar:
        for chunk in read_split(paths, "test", card, f.chunk_rows):
            test[start : start + len(chunk)] = transform(chunk)
            chunk[META_COLUMNS + categorical].to_csv(
                meta_file, mode="a", header=start == 0, index=False
            )
            start += len(chunk)
            bar.update(len(chunk))
    test.flush()
    del test
    if start != n_test:
        raise UserError(
            f"{paths.raw / 'test.csv'} has {start} rows but the card says {n_test}; re-run download"
        )

    write_json(
        paths.features / "meta.json",
        {
            "source": card["source"],
            "has_time": card["has_time"],
            "columns": names,
            "groups": groups,
            "feature_set": f.feature_set,
            "selected": groups[f.feature_set],
            "fit_on": f.fit_on,
            "categorical": categorical,
            "log_columns": log_columns,
            "categories": {c: len(v) for c, v in categories.items()},
            "train_attacks": sorted(a for a in card["splits"]["train"]["labels"]),
            "rows": {
                "fit": len(fit_rows),
                "fit_attacks": int(fit_rows["is_attack"].sum()),
                "val": len(val),
                "test": n_test,
            },
        },
    )
    logger.info(
        f"featurize: {len(names)} columns ({len(groups[f.feature_set])} in set {f.feature_set}); "
        f"fit {len(fit_rows)}, "
        f"normal val {len(val)}, test {n_test} rows"
    )


if __name__ == "__main__":
    runner.main(PROJECT, "featurize", featurize)
