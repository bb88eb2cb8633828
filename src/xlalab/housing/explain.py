"""Explanations a reader can act on: SHAP and LIME in the houses' own columns and units.

The models see the preprocessed inputs (Yeo-Johnson-standardised numbers, scaled quality ordinals,
one-hot columns, scikit-learn's ``<column>_infrequent_sklearn`` for rare categories), where a
threshold of "TotalSF > 0.65" names no house. Here:

* SHAP: the explainers still run on the model's inputs (what the model computes), and the values of
  the columns one feature became (its one-hot columns) are summed, which SHAP's additivity allows:
  one value per house and feature, named by the feature. Each value is then put in dollars: how
  much the house's predicted price would fall without that feature's contribution,
  ``expm1(f) - expm1(f - phi)`` for a model output ``f`` in log1p(price).
* LIME: the explainer perturbs the houses' own columns (numbers in their units, categories as
  categories), and its function prepares them as the models do before predicting. Its rules read
  "TotalSF > 2,850 sq ft" or "RoofMatl is CompShg", and each rule's weight (log price) is put in
  dollars on the explained house's predicted price the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .featurize import NOMINAL, ORDINAL

# Units of the numeric columns (data_description.txt); a column not named is a plain count.
SQUARE_FEET = {
    "LotArea", "MasVnrArea", "BsmtFinSF1", "BsmtFinSF2", "BsmtUnfSF", "TotalBsmtSF", "1stFlrSF",
    "2ndFlrSF", "LowQualFinSF", "GrLivArea", "GarageArea", "WoodDeckSF", "OpenPorchSF",
    "EnclosedPorch", "3SsnPorch", "ScreenPorch", "PoolArea", "TotalSF", "PorchSF",
}  # fmt: skip
UNITS = {
    **dict.fromkeys(SQUARE_FEET, "sq ft"),
    "LotFrontage": "ft",
    **dict.fromkeys(("YearBuilt", "YearRemodAdd", "GarageYrBlt"), "year"),
    **dict.fromkeys(("HouseAge", "RemodAge"), "years"),
    "MiscVal": "$",
    **dict.fromkeys(("OverallQual", "OverallCond"), "1-10"),
}
SCALE = "1-10"  # a rating: its numbers are shown bare, the axis names the scale
OTHER = "other"  # what scikit-learn's infrequent category is called here


def unit_of(column: str) -> str | None:
    return UNITS.get(column)


def amount(column: str, value: float) -> str:
    """A value of ``column`` in its unit: 2,850 sq ft, 1954, 12 years, $450, 7 of 10, 2.5."""
    unit = unit_of(column)
    if unit == "year":
        return f"{value:.0f}"
    if unit == "$":
        return f"${value:,.0f}"
    number = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"
    return f"{number} {unit}" if unit and unit != SCALE else number


def dollars(value: float, short: bool = False) -> str:
    """A signed amount of money: +$12,300, -$850; ``short`` (axis ticks): +$12k."""
    sign = "+" if value >= 0 else "-"
    if short and abs(value) >= 1000:
        return f"{sign}${abs(value) / 1000:,.0f}k"
    return f"{sign}${abs(value):,.0f}"


def titled(column: str) -> str:
    """A column's name with its unit, for an axis: TotalSF (sq ft)."""
    unit = unit_of(column)
    return f"{column} ({unit})" if unit and unit not in ("year", "$") else column


def dollar_effect(log_price: np.ndarray, log_effect: np.ndarray) -> np.ndarray:
    """How much a predicted price (``log_price`` in log1p dollars) owes to a part ``log_effect``
    of it: the price minus the price without that part."""
    return np.expm1(log_price) - np.expm1(log_price - log_effect)


# --- the model's inputs, traced back to the houses' columns -------------------------------------
@dataclass(frozen=True)
class InputColumns:
    """Which of the houses' columns each of the model's inputs comes from, and what it says."""

    source: list[str]  # per model input: the house's column it was computed from
    meaning: list[str]  # per model input: readable, e.g. "TotalSF", "RoofMatl: other"
    columns: list[str]  # the houses' columns, in the preprocessor's order

    def group(self, values: np.ndarray) -> np.ndarray:
        """Per row, the sum of the values of each column's inputs: (rows, inputs) -> (rows,
        columns)."""
        index = {c: i for i, c in enumerate(self.columns)}
        out = np.zeros((values.shape[0], len(self.columns)))
        for j, column in enumerate(self.source):
            out[:, index[column]] += values[:, j]
        return out


def input_columns(prep) -> InputColumns:
    """The fitted preprocessor's inputs traced to the houses' columns: a number or an ordinal is
    one input; a category one input per kept value plus, where rare values were pooled, one for
    them ("other")."""
    source, meaning, columns = [], [], []
    for name, transformer, cols in prep.transformers_:
        if name == "remainder":
            continue
        columns += list(cols)
        if name != "nominal":
            source += list(cols)
            meaning += list(cols)
            continue
        encoder = transformer.named_steps["onehot"]
        for i, column in enumerate(cols):
            infrequent = encoder.infrequent_categories_[i]
            rare = set() if infrequent is None else set(infrequent)
            kept = [str(v) for v in encoder.categories_[i] if v not in rare]
            names = [f"{column}: {v}" for v in kept] + ([f"{column}: {OTHER}"] if rare else [])
            source += [column] * len(names)
            meaning += names
    width = len(prep.get_feature_names_out())
    if len(source) != width:
        raise ValueError(f"traced {len(source)} of the preprocessor's {width} outputs")
    return InputColumns(source, meaning, columns)


# --- SHAP ----------------------------------------------------------------------------------------
@dataclass
class ShapInDollars:
    """One model's SHAP values per house and column, in dollars of its predicted price."""

    model: str
    columns: list[str]
    effect: np.ndarray  # (houses, columns): dollars
    values: np.ndarray  # (houses, columns): the houses' values (numbers; categories as NaN)
    predicted: np.ndarray  # (houses,): the model's predicted price in dollars

    def importance(self) -> pd.Series:
        """Mean absolute dollar effect per column, largest first."""
        return pd.Series(np.abs(self.effect).mean(axis=0), index=self.columns).sort_values(
            ascending=False, kind="stable"
        )


def shap_in_dollars(
    model: str, explanation, inputs: InputColumns, houses: pd.DataFrame
) -> ShapInDollars:
    """``explanation`` (shap.Explanation on the model's inputs, log1p price) grouped by the houses'
    columns and put in dollars; ``houses``: the same houses' prepared columns."""
    grouped = inputs.group(np.asarray(explanation.values))
    output = np.asarray(explanation.base_values).reshape(-1) + np.asarray(explanation.values).sum(
        axis=1
    )
    effect = dollar_effect(output[:, None], grouped)
    values = np.column_stack([numeric_values(houses, c) for c in inputs.columns])
    return ShapInDollars(model, inputs.columns, effect, values, np.expm1(output))


def numeric_values(houses: pd.DataFrame, column: str) -> np.ndarray:
    """A column's values as numbers for colouring: numbers as they are, a quality scale as its
    rank (Po < Fa < TA < Gd < Ex), other categories NaN (no order to colour by)."""
    if column in ORDINAL:
        rank = {v: i for i, v in enumerate(ORDINAL[column])}
        return houses[column].map(rank).to_numpy(float)
    if column in NOMINAL:
        return np.full(len(houses), np.nan)
    return pd.to_numeric(houses[column], errors="coerce").to_numpy(float)


def direction(shap: ShapInDollars, column: str) -> str:
    """How the column's values move the price, in words, from the houses' quarters: "its top
    quarter (2,956 sq ft or more) adds $54,338 on average, its bottom quarter (...) takes off
    $21,362"."""
    j = shap.columns.index(column)
    values, effect = shap.values[:, j], shap.effect[:, j]
    known = ~np.isnan(values)
    if known.sum() < 8 or np.unique(values[known]).size < 4:
        return ""
    low, high = np.percentile(values[known], [25, 75])
    bottom, top = effect[known & (values <= low)], effect[known & (values >= high)]
    if not len(bottom) or not len(top):
        return ""

    def moves(effect: float) -> str:
        return f"{'adds' if effect >= 0 else 'takes off'} ${abs(effect):,.0f}"

    return (
        f"its top quarter ({amount(column, high)} or more) {moves(top.mean())} on average, its "
        f"bottom quarter ({amount(column, low)} or less) {moves(bottom.mean())}"
    )


# --- LIME ----------------------------------------------------------------------------------------
@dataclass
class HouseColumns:
    """The houses' columns as LIME's numeric matrix: numbers in their units (missing values filled
    as the preprocessor fills them), categories as codes."""

    columns: list[str]
    categories: dict[int, list[str]]  # column index -> its values by code

    def encode(self, houses: pd.DataFrame, fill: dict[str, object]) -> np.ndarray:
        out = np.empty((len(houses), len(self.columns)))
        for j, column in enumerate(self.columns):
            values = houses[column].where(houses[column].notna(), fill[column])
            if j in self.categories:
                code = {v: i for i, v in enumerate(self.categories[j])}
                out[:, j] = values.astype(str).map(code).to_numpy(float)
            else:
                out[:, j] = pd.to_numeric(values).to_numpy(float)
        return out

    def decode(self, rows: np.ndarray) -> pd.DataFrame:
        data = {}
        for j, column in enumerate(self.columns):
            if j in self.categories:
                names = np.asarray(self.categories[j], dtype=object)
                data[column] = names[np.clip(np.rint(rows[:, j]).astype(int), 0, len(names) - 1)]
            else:
                data[column] = rows[:, j]
        return pd.DataFrame(data)


def house_columns(prep, train: pd.DataFrame, test: pd.DataFrame) -> tuple[HouseColumns, dict]:
    """The columns the preprocessor reads, the values of each category (training values first,
    then any seen only in the held-out houses), and what fills a missing value: the
    preprocessor's own imputation (median numbers, most frequent categories)."""
    fill: dict[str, object] = {}
    for name, transformer, cols in prep.transformers_:
        if name == "remainder":
            continue
        fill |= dict(zip(cols, transformer.named_steps["impute"].statistics_))
    columns = [c for c in fill]
    categories = {}
    for j, column in enumerate(columns):
        if column in ORDINAL or column in NOMINAL:
            seen = pd.concat([train[column], test[column]]).fillna(fill[column]).astype(str)
            categories[j] = list(dict.fromkeys(seen))
    return HouseColumns(columns, categories), fill


@dataclass
class Rule:
    """One LIME term, in the house's units."""

    column: str
    text: str  # "TotalSF > 2,850 sq ft", "RoofMatl is CompShg"
    lower: float | None  # numbers: the rule's bounds (lower < value <= upper), in ``unit``
    upper: float | None
    unit: str | None
    category: str | None  # categories: the value the rule is about
    value: object  # the explained house's value
    weight: float  # log price
    effect: float  # dollars on the explained house's predicted price


def rule_of(column: str, bounds: np.ndarray | None, value, category: str | None) -> tuple:
    """(text, lower, upper) of the quartile bin of a number, or of a category's rule."""
    if category is not None:
        return f"{column} is {category}", None, None
    edges = list(bounds)
    place = int(np.searchsorted(edges, value))  # LIME's own binning of the value
    lower = edges[place - 1] if place > 0 else None
    upper = edges[place] if place < len(edges) else None
    if lower is None:
        return f"{column} ≤ {amount(column, upper)}", None, float(upper)
    if upper is None:
        return f"{column} > {amount(column, lower)}", float(lower), None
    return (
        f"{amount(column, lower)} < {column} ≤ {amount(column, upper)}",
        float(lower),
        float(upper),
    )


@dataclass
class Lime:
    """LIME over the houses' columns: numbers binned at their training quartiles, categories
    perturbed as categories; ``bounds``: those quartiles per number column, to word each rule."""

    explainer: object
    bounds: dict[int, np.ndarray]


def lime_over(space: HouseColumns, train: np.ndarray, seed: int) -> Lime:
    from lime.lime_tabular import LimeTabularExplainer

    explainer = LimeTabularExplainer(
        train,
        mode="regression",
        feature_names=space.columns,
        categorical_features=sorted(space.categories),
        categorical_names={j: names for j, names in space.categories.items()},
        discretize_continuous=True,
        discretizer="quartile",
        random_state=seed,
    )
    binned = explainer.discretizer
    # the same quartiles LIME bins by (it keeps only their names, rounded)
    bounds = {j: np.unique(q) for j, q in zip(binned.to_discretize, binned.bins(train, None))}
    return Lime(explainer, bounds)


def explain_house(
    lime: Lime,
    space: HouseColumns,
    row: np.ndarray,
    predict: Callable[[np.ndarray], np.ndarray],
    features: int,
    samples: int,
) -> tuple[list[Rule], float]:
    """LIME's rules for one house (as ``space.encode`` gives it) and its predicted log price."""
    explanation = lime.explainer.explain_instance(
        row, predict, num_features=features, num_samples=samples
    )
    predicted = float(predict(row[None, :])[0])
    rules = []
    # In regression LIME keeps the weights under label 1 (label 0 holds them negated).
    for j, weight in explanation.local_exp[1]:
        column = space.columns[j]
        category = space.categories[j][int(row[j])] if j in space.categories else None
        text, lower, upper = rule_of(column, lime.bounds.get(j), row[j], category)
        rules.append(
            Rule(
                column=column,
                text=text,
                lower=lower,
                upper=upper,
                unit=None if category is not None else unit_of(column),
                category=category,
                value=category if category is not None else float(row[j]),
                weight=float(weight),
                effect=float(dollar_effect(np.array(predicted), np.array(weight))),
            )
        )
    return rules, predicted
