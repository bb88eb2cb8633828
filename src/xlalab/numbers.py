"""One way to print a result, shared by ``xlalab summary`` (and so the README's tables), the
results page and ``xlalab seeds``: a value with as many decimals as its uncertainty supports.

``with_interval(0.009115, (-0.02474, 0.03906), sign=True)`` is ``+0.009 [-0.025, 0.039]``: the
decimals are those of two significant digits of the interval's width, so the digits shown are the
ones the test rows can tell apart. A spread over seeds takes its decimals from the standard
deviation the same way: ``0.827 ± 0.012 [0.815, 0.838]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

UNKNOWN = "-"
ARROWS = {True: "↑", False: "↓"}
LEGEND = "↑ higher is better, ↓ lower is better"


def decimals(width: float | None) -> int:
    """Decimals that show two significant digits of ``width`` (4 when it is 0 or unknown)."""
    if width is None or not math.isfinite(width) or not width > 0:
        return 4
    return min(6, max(0, 1 - math.floor(math.log10(width))))


def fixed(value: float, digits: int, sign: bool = False) -> str:
    return f"{value:{'+' if sign else ''}.{digits}f}"


def with_interval(value: float | None, interval: Sequence[float] | None, sign: bool = False) -> str:
    """``0.910 [0.891, 0.928]``; ``sign`` for a difference: ``+0.009 [-0.025, 0.039]``."""
    if value is None:
        return UNKNOWN
    if not interval or None in interval:
        return fixed(value, 4, sign)
    low, high = interval
    digits = decimals(high - low)
    return f"{fixed(value, digits, sign)} [{fixed(low, digits)}, {fixed(high, digits)}]"


def with_spread(mean: float, sd: float | None, low: float, high: float, sign: bool = False) -> str:
    """``0.827 ± 0.012 [0.815, 0.838]``: mean ± standard deviation [min, max] over seeds, the
    decimals from the standard deviation (``± 0`` when the seeds agree; no ``±`` for one seed)."""
    digits = decimals(sd)
    spread = "" if sd is None else f" ± {fixed(sd, digits)}" if sd > 0 else " ± 0"
    return f"{fixed(mean, digits, sign)}{spread} [{fixed(low, digits)}, {fixed(high, digits)}]"


def metric_name(metric: str, better: str | bool | None) -> str:
    """``accuracy ↑``, ``mae ↓``: the metric with the way that is better (``higher``/``lower``,
    or higher_is_better)."""
    if isinstance(better, str):
        better = {"higher": True, "lower": False}.get(better)
    arrow = ARROWS.get(better) if isinstance(better, bool) else None
    return f"{metric} {arrow}" if arrow else metric
