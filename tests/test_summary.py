"""`xlalab summary`: one row per built project, read from metrics/<project>.json (the headline of
the Report each evaluate stage returns, or the verdict object of the layout before it), every
number printed the one way (xlalab/numbers.py), and the verdicts that are not wins said in words
under the table."""

import json
from pathlib import Path

import numpy as np
import pytest

from xlalab import numbers
from xlalab.pipeline.report import Report
from xlalab.results import evidence, summary

RUNTIME = {"backend": "accelerate", "device_type": "cpu", "device_count": 1, "processes": 1}


def write(project: str, verdict: dict, runtime: dict = RUNTIME, source: str = "offline") -> None:
    """metrics/<project>.json as the runner writes it from a Report of ``verdict``."""
    report = Report.judged(verdict, test_rows=400, source=source, runtime=runtime)
    Path("metrics").mkdir(exist_ok=True)
    Path(f"metrics/{project}.json").write_text(json.dumps(report.metrics()))


def verdict_of(model_error: float, baseline_error: float, seed: int = 0) -> dict:
    """A real verdict of results/evidence.py: a forecast with errors about ``model_error`` against
    a baseline with errors about ``baseline_error``, MAE over 400 rows."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=400)
    predictions = {
        "lstm": y + rng.normal(scale=model_error, size=400),
        "arima": y + rng.normal(scale=baseline_error, size=400),
        "naive": y + rng.normal(scale=3 * baseline_error, size=400),
    }
    return evidence.compare(
        "lstm",
        predictions,
        y,
        evidence.mae,
        metric_name="mae",
        higher_is_better=False,
        baselines=["arima", "naive"],
    )


@pytest.fixture
def metrics(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write("lstm", verdict_of(0.5, 0.5), {**RUNTIME, "device_count": 2, "processes": 2})
    write("housing", {**verdict_of(0.8, 0.5), "model": "blend"})
    write("reviews", verdict_of(0.2, 0.5))
    cifar10 = {**verdict_of(0.2, 0.5), "model": "efficientnet_lite0"}
    write("cifar10", cifar10, {**RUNTIME, "backend": "xla", "device_count": 4, "spmd": True})
    # imdb: the layout before the Report, a verdict object beside the rest
    Path("metrics/imdb.json").write_text(
        json.dumps({"verdict": verdict_of(0.5, 0.5, seed=1), "data": {"source": "old"}})
    )
    Path("metrics/traffic.json").write_text(json.dumps({"seconds": 3}))  # no verdict


def test_a_row_per_project_with_intervals_verdict_and_what_trained_it(metrics):
    rows = {r["project"]: r for r in summary.rows()}
    assert [rows[p]["verdict"] for p in ("lstm", "housing", "reviews", "cifar10")] == [
        "ties",
        "loses",
        "beats",
        "beats",
    ]
    tie = verdict_of(0.5, 0.5)
    low, high = tie["difference_interval"]
    assert low < 0 < high  # the tie is real: its interval holds 0
    assert rows["lstm"]["metric"] == "mae ↓"
    assert rows["lstm"]["difference"] == numbers.with_interval(
        tie["difference"], tie["difference_interval"], sign=True
    )
    assert rows["lstm"]["difference"].startswith(f"{tie['difference']:+.3f} [")
    assert rows["lstm"]["trained_on"] == "accelerate, 2 cpu, 2 processes"
    assert rows["cifar10"]["trained_on"] == "xla, 4 cpu (spmd)"
    assert rows["imdb"]["verdict"] == "ties" and rows["imdb"]["source"] == "old"
    assert rows["traffic"]["verdict"] == summary.NO_VERDICT


def test_scores_show_as_many_decimals_as_their_interval_supports():
    assert numbers.with_interval(0.90812, [0.8903, 0.9262]) == "0.908 [0.890, 0.926]"
    assert numbers.with_interval(0.0071, [-0.0032, 0.0169], sign=True) == "+0.007 [-0.003, 0.017]"
    assert numbers.with_interval(0.009115, [-0.02474, 0.03906], sign=True) == (
        "+0.009 [-0.025, 0.039]"
    )
    assert numbers.with_interval(0.9081, [0.85, 0.95]) == "0.91 [0.85, 0.95]"
    assert numbers.with_interval(182345.6, [171234.0, 195012.0]) == "182346 [171234, 195012]"
    assert numbers.with_interval(0.5, [0.5, 0.5]) == "0.5000 [0.5000, 0.5000]"  # no spread
    assert numbers.with_spread(0.8267, 0.01234, 0.815, 0.838) == "0.827 ± 0.012 [0.815, 0.838]"
    assert numbers.with_spread(0.5, 0.0, 0.5, 0.5) == "0.5000 ± 0 [0.5000, 0.5000]"
    assert numbers.metric_name("mae", "lower") == "mae ↓"
    assert numbers.metric_name("f1", True) == "f1 ↑"


def test_the_table_has_a_column_for_each_and_says_ties_and_losses_in_words(metrics):
    Path("metrics/traffic.json").unlink()
    text = summary.markdown()
    table, words = text.split("\n\n")[:2]
    lines = table.splitlines()
    assert lines[0] == (
        "| project | data source | headline model | metric | score [95 % CI] | strongest baseline "
        "| its score [95 % CI] | difference [95 % CI] | verdict | trained on |"
    )
    assert all(line.count("|") == 11 for line in lines)
    reviews = verdict_of(0.2, 0.5)
    score = numbers.with_interval(reviews["score"], reviews["interval"])
    assert f"| reviews | offline | lstm | mae ↓ | {score} | arima |" in table
    assert words.startswith("Where the model does not win: **imdb**'s lstm ties with arima ")
    assert "which holds 0); **housing**'s blend loses to arima (difference +0." in words
    assert "excludes 0) in cifar10, reviews." in words
    assert words.endswith("No verdict yet: traffic.")


def test_when_every_model_wins_the_words_say_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from xlalab import PROJECTS

    for project in PROJECTS:
        write(project, verdict_of(0.2, 0.5))
    words = summary.markdown().split("\n\n")[1]
    assert words == (
        "No model ties or loses to its strongest baseline. The model beats its strongest baseline "
        f"(the difference's interval excludes 0) in {', '.join(PROJECTS)}."
    )


def test_the_readme_shows_the_table_of_the_committed_metrics(monkeypatch):
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)
    assert summary.markdown() in (root / "README.md").read_text(), (
        "README's results table is stale: paste the output of `python -m xlalab summary`"
    )


def test_the_readme_quotes_reviews_two_class_verdict_from_its_details(monkeypatch):
    """The README's sentence on reviews' opinions alone (the plot-summary class set aside) gives the
    numbers of the committed `verdict_sentiment`, each printed the one way."""
    root = Path(__file__).resolve().parents[1]
    sentiment = json.loads((root / "reports/reviews/details.json").read_text())["verdict_sentiment"]
    readme = " ".join((root / "README.md").read_text().split())
    difference = numbers.with_interval(
        sentiment["difference"], sentiment["difference_interval"], sign=True
    )
    digits = numbers.decimals(sentiment["interval"][1] - sentiment["interval"][0])
    quoted = (
        f"{numbers.fixed(sentiment['score'], digits)} against {sentiment['best_baseline']}'s "
        f"{numbers.fixed(sentiment['baseline_score'], digits)}, {difference}"
    )
    assert quoted in readme, f"README's reviews sentence should say: {quoted}"
