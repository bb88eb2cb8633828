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
Whole attack types are held out beside the normal validation traffic (``val_attack_types`` of each
category's types, every row of them): labelled validation traffic on which detectors and their
settings are chosen without the test split, with attack types that no detector was fitted on, as
the test traffic has types never seen in training.
Test traffic streams through in chunks into ``test.npy`` (written block by block, never held or
mapped whole), so millions of rows fit.
"""

from __future__ import annotations

import logging
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from tqdm.auto import tqdm

from ..errors import UserError
from ..files import read_json, write_json
from ..pipeline import runner
from ..pipeline.contract import Paths
from .arrays import RowWriter
from .project import PROJECT, Featurize, FeaturizeParams

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


def read_training(
    paths: Paths, card: dict, f: Featurize, seed: int
) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """One pass over training traffic: the category counts of all of it, and the rows kept (a
    seeded sample when there are more than ``max_fit_rows`` in the pool the detectors learn
    from; attacks are kept at the same rate, as labelled validation traffic)."""
    counts = card["splits"]["train"]
    pool_size = counts["normal"] if f.fit_on == "normal" else counts["rows"]
    keep = min(1.0, f.max_fit_rows / pool_size)
    rng = np.random.default_rng(seed)
    seen: dict[str, pd.Series] = {c: pd.Series(dtype=float) for c in card["categorical"]}
    kept = []
    for chunk in read_split(paths, "train", card, f.chunk_rows):
        for c in card["categorical"]:
            seen[c] = seen[c].add(chunk[c].astype(str).value_counts(), fill_value=0)
        kept.append(chunk[rng.random(len(chunk)) < keep])
    return pd.concat(kept, ignore_index=True), seen


def held_out_types(attacks: pd.DataFrame, share: float, seed: int) -> list[str]:
    """The attack types held out whole for validation: in each category, a seeded draw of
    ``share`` of its types (rounded; at least one and never all of a category with two or more
    types), so every category with a choice keeps types of its own on both sides. Where no
    category has two types, ``share`` of all the types (at least one)."""
    rng = np.random.default_rng(seed)
    types = attacks.groupby(attacks["category"].fillna(""))["attack"].unique()
    held = []
    for category in sorted(types.index):
        names = sorted(map(str, types[category]))
        if len(names) >= 2:
            take = min(len(names) - 1, max(1, round(share * len(names))))
            held += [str(name) for name in rng.permutation(names)[:take]]
    if not held and len(attacks):
        names = sorted(map(str, attacks["attack"].unique()))
        held = [str(n) for n in rng.permutation(names)[: max(1, round(share * len(names)))]]
    return sorted(held)


def split_training(train: pd.DataFrame, f: Featurize, seed: int) -> dict[str, pd.DataFrame]:
    """``fit`` (what the detectors learn from), ``val`` (held-out NORMAL traffic: thresholds and
    early stopping) and ``val_attacks`` (every row of the held-out attack types: with ``val``,
    labelled validation traffic, never the test split). With ``fit_on: all`` the other attack
    types join ``fit``; no held-out type ever does."""
    normal, attacks = train[train["is_attack"] == 0], train[train["is_attack"] == 1]
    if len(normal) < 10:
        raise UserError(
            f"only {len(normal)} normal training rows were kept; the detectors need normal traffic "
            "(raise traffic.featurize.max_fit_rows or check the labels)"
        )
    fit_normal, val = train_test_split(normal, test_size=f.val_fraction, random_state=seed)
    held = attacks["attack"].astype(str).isin(held_out_types(attacks, f.val_attack_types, seed))
    fit_attacks, val_attacks = attacks[~held], attacks[held]
    fit = pd.concat([fit_normal, fit_attacks]) if f.fit_on == "all" else fit_normal
    return {"fit": fit, "fit_normal": fit_normal, "val": val, "val_attacks": val_attacks}


def split_of_rows(splits: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Which split every training row kept went to, with its attack type: the record that shows
    no held-out attack type is in the rows the detectors were fitted on."""
    parts = [
        frame[["attack", "category"]].assign(split=split)
        for split, frame in splits.items()
        if split in ("fit", "val", "val_attacks")
    ]
    return pd.concat(parts, ignore_index=True)[["split", "attack", "category"]]


def fit_transformer(
    train: pd.DataFrame, fit_normal: pd.DataFrame, seen: dict[str, pd.Series], card: dict, f
) -> tuple[ColumnTransformer, list[str], dict[str, list[str]]]:
    """The transformer, learned on normal training traffic (log columns: on the pool the detectors
    learn from); the log-scaled columns; the categories kept per categorical column."""
    features, categorical = card["features"], card["categorical"]
    numeric = [c for c in features if c not in categorical]
    pool = train if f.fit_on == "all" else train[train["is_attack"] == 0]
    categories = {
        c: sorted(str(v) for v, n in seen[c].items() if n >= f.min_category_count and v != OTHER)
        for c in categorical
    }
    log_columns = [c for c in numeric if pool[c].min() >= 0 and pool[c].max() > 1]
    transformer = build_transformer(numeric, log_columns, categories).fit(fit_normal[features])
    missing = int(fit_normal[numeric].isna().sum().sum())
    if missing:
        logger.warning(
            f"{missing} missing or infinite values in normal training traffic were replaced by the "
            "column median"
        )
    return transformer, log_columns, categories


def stream_test(paths: Paths, card: dict, f: Featurize, transform, columns: int) -> int:
    """Test traffic, chunk by chunk, into ``test.npy`` and its row metadata into
    ``test_meta.csv``; the number of rows written."""
    n_test = card["splits"]["test"]["rows"]
    meta_columns = META_COLUMNS + card["categorical"]
    meta, schema = None, None
    bar = tqdm(total=n_test, desc="featurize test", unit=" rows", file=sys.stderr, disable=None)
    with RowWriter(paths.features / "test.npy", n_test, columns) as matrix, bar:
        for chunk in read_split(paths, "test", card, f.chunk_rows):
            if matrix.written + len(chunk) > n_test:
                break
            matrix.write(transform(chunk))
            table = pa.Table.from_pandas(chunk[meta_columns], preserve_index=False)
            if meta is None:
                schema = table.schema.remove_metadata()
                meta = pacsv.CSVWriter(paths.features / "test_meta.csv", schema)
            meta.write_table(table.cast(schema))
            bar.update(len(chunk))
    if meta is not None:
        meta.close()
    if matrix.written != n_test:
        raise UserError(
            f"{paths.raw / 'test.csv'} does not hold the {n_test} rows its card says; re-run "
            "download"
        )
    return n_test


def attack_counts(rows: pd.DataFrame) -> dict[str, int]:
    """Rows per attack type, most common first."""
    counts = rows["attack"].astype(str).value_counts()
    return {str(name): int(n) for name, n in counts.items()}


def featurize(params: FeaturizeParams, paths: Paths) -> None:
    f = params.featurize
    card = read_json(paths.card)
    if f.feature_set not in card["groups"]:
        raise UserError(
            f"traffic.featurize.feature_set {f.feature_set!r} is not defined for {card['source']}; "
            f"it has {', '.join(card['groups'])}"
        )
    train, seen = read_training(paths, card, f, params.seed)
    splits = split_training(train, f, params.seed)
    transformer, log_columns, categories = fit_transformer(
        train, splits["fit_normal"], seen, card, f
    )
    names = list(transformer.get_feature_names_out())
    groups = column_groups(names, card["groups"])

    def transform(frame: pd.DataFrame) -> np.ndarray:
        return transformer.transform(frame[card["features"]]).astype(np.float32)

    for split in ("fit", "val", "val_attacks"):
        np.save(paths.features / f"{split}.npy", transform(splits[split]))
    split_of_rows(splits).to_csv(paths.features / "training_rows.csv", index=False)
    n_test = stream_test(paths, card, f, transform, len(names))
    rows = {split: len(splits[split]) for split in ("fit", "val", "val_attacks")}
    rows |= {"fit_attacks": int(splits["fit"]["is_attack"].sum()), "test": n_test}
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
            "categorical": card["categorical"],
            "log_columns": log_columns,
            "categories": {c: len(v) for c, v in categories.items()},
            "train_attacks": sorted(a for a in card["splits"]["train"]["labels"]),
            "validation_attack_types": attack_counts(splits["val_attacks"]),
            "fit_attack_types": attack_counts(splits["fit"][splits["fit"]["is_attack"] == 1]),
            "rows": rows,
        },
    )
    logger.info(
        f"featurize: {len(names)} columns ({len(groups[f.feature_set])} in set {f.feature_set}); "
        f"fit {rows['fit']}, normal val {rows['val']}, attack val {rows['val_attacks']} (types "
        f"held out whole: {', '.join(sorted(splits['val_attacks']['attack'].astype(str).unique()))}"
        f"), test {n_test} rows"
    )


if __name__ == "__main__":
    runner.main(featurize, PROJECT)
