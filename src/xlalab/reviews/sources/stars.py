"""Star ratings as classes: what the huggingface and local sources share."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from ...errors import UserError
from ...textclf import corpus

TEXT_PARAM, RATING_PARAM = "reviews.download.text_column", "reviews.download.rating_column"


def stars_to_frame(
    texts: pd.Series, ratings: pd.Series, offset: int, star_map: Mapping[int, str], where: str
) -> pd.DataFrame:
    """stars = rating + offset (the SetFit and mteb mirrors store 0-4), then classes by
    ``star_map``."""
    if ratings.isna().any():
        raise UserError(
            f"{where} has {int(ratings.isna().sum())} missing ratings; fill or drop those rows"
        )
    numeric = pd.to_numeric(ratings, errors="coerce")
    if numeric.isna().any() or (numeric != numeric.round()).any():
        bad = ratings[numeric.isna() | (numeric != numeric.round())].iloc[0]
        raise UserError(f"{where} has a non-integer rating {bad!r}; ratings must be whole stars")
    stars = numeric.astype(int) + offset
    outside = sorted(set(stars[~stars.isin(star_map)].tolist()))
    if outside:
        raise UserError(
            f"{where}: rating + offset {offset} gives star(s) {outside[:5]} outside 1-5; set "
            "`reviews.download.rating_offset` (0 for ratings 1-5, 1 for ratings 0-4)"
        )
    return corpus.to_frame(texts, stars, dict(star_map), f"{where} (stars = rating + {offset})")
