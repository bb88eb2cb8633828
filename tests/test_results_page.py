"""`xlalab report`: one static page with every project's verdict, its scores beside its baselines
and its figures, readable offline. Checked on metrics files of both shapes (with intervals, from
core/evidence.py, and the older point-score verdict), as HTML, and in a headless browser where one
is installed."""

from __future__ import annotations

import base64
import html.parser
import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
from PIL import Image

from xlalab import PROJECTS, cli
from xlalab.results import evidence
from xlalab.results import page as results_page

FIGURES = ("confusion", "training_curves")


class Page(html.parser.HTMLParser):
    """The page's image sources, its links and the text of each project's section."""

    def __init__(self, text: str):
        super().__init__()
        self.images, self.links, self.sections, self._section = [], [], {}, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append((self._section, attrs["src"]))
        if tag in ("a", "link", "script", "iframe", "source") and (
            attrs.get("href") or attrs.get("src")
        ):
            self.links.append(attrs.get("href") or attrs.get("src"))
        if tag == "section":
            self._section = attrs["id"]
            self.sections[self._section] = ""

    def handle_endtag(self, tag):
        if tag == "section":
            self._section = None

    def handle_data(self, data):
        if self._section:
            self.sections[self._section] += data


def new_verdict(model: str, better: bool) -> dict:
    """A verdict as core/evidence.py writes it, from real predictions."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    model_pred = np.where(rng.random(300) < (0.9 if better else 0.5), y, 1 - y)
    predictions = {
        model: model_pred,
        "majority": np.ones(300, int),
        "coin": rng.integers(0, 2, 300),
    }
    return evidence.compare(
        model,
        predictions,
        y,
        evidence.accuracy,
        metric_name="accuracy",
        higher_is_better=True,
        baselines=["majority", "coin"],
    )


OLD_VERDICT = {
    "model": "lstm",
    "metric": "mae",
    "score": 0.442,
    "best_baseline": "arima",
    "baseline_score": 0.4349,
    "beats_baseline": False,
    "margin": 0.0071,
    "line": "lstm mae 0.442 vs best baseline arima 0.4349: does NOT beat it",
}


@pytest.fixture
def results(tmp_path, monkeypatch):
    """A workspace where every project but traffic has metrics and two PNG figures: cifar10 beats,
    imdb ties (no better than chance), lstm has the old verdict shape."""
    monkeypatch.chdir(tmp_path)
    verdicts = {"cifar10": new_verdict("cnn", True), "imdb": new_verdict("bert", False)}
    verdicts |= {"lstm": OLD_VERDICT, "housing": new_verdict("blend", True)}
    verdicts["reviews"] = new_verdict("finetuned", True)
    for name, verdict in verdicts.items():
        metrics = {"verdict": verdict, "data": {"source": f"offline-{name}"}}
        metrics["runtime"] = {"backend": "xla", "device_type": "tpu", "device_count": 4}
        Path("metrics").mkdir(exist_ok=True)
        Path(f"metrics/{name}.json").write_text(json.dumps(metrics))
        figures = Path(f"plots/{name}/figures")
        figures.mkdir(parents=True)
        for i, stem in enumerate(FIGURES):
            Image.new("RGB", (40 + i, 30), (i * 90, 20, 200)).save(figures / f"{stem}.png")
    return verdicts


def test_the_page_holds_every_verdict_with_its_intervals_and_every_figure(results):
    assert cli.main(["report"]) == 0
    page = Page(Path("reports/index.html").read_text())
    assert set(page.sections) == set(PROJECTS)
    for name, verdict in results.items():
        text = page.sections[name]
        outcome = results_page.verdict_of({"verdict": verdict})["outcome"]
        assert results_page.OUTCOMES[outcome] in text
        for baseline in verdict.get("baselines", {}):
            assert baseline in text
        if "interval" in verdict:
            assert results_page.interval(verdict["interval"]) in text
            assert results_page.interval(verdict["baselines"]["coin"]["interval"]) in text
    outcomes = {n: results_page.verdict_of({"verdict": v})["outcome"] for n, v in results.items()}
    assert outcomes["cifar10"] == "beats" and outcomes["lstm"] == "does not beat"
    assert outcomes["imdb"] in ("ties", "loses")
    assert "Not evaluated yet" in page.sections["traffic"]
    # every figure is in its project's section, embedded byte for byte
    for name in results:
        embedded = [src for section, src in page.images if section == name]
        files = [Path(f"plots/{name}/figures/{stem}.png").read_bytes() for stem in sorted(FIGURES)]
        prefix = "data:image/png;base64,"
        assert all(src.startswith(prefix) for src in embedded)
        assert [base64.b64decode(src[len(prefix) :]) for src in embedded] == files


def test_linked_figures_resolve_and_nothing_points_at_the_network(results):
    assert cli.main(["report", "--link", "-o", "out/page.html"]) == 0
    text = Path("out/page.html").read_text()
    page = Page(text)
    assert len(page.images) == len(results) * len(FIGURES)
    for _, src in page.images:
        assert not urlparse(src).scheme
        assert (Path("out") / unquote(src)).resolve().is_file(), src
    assert all(link.startswith("#") for link in page.links)
    assert not re.search(r"(https?:)?//[a-z]", text), "a network address"


def test_each_project_shows_its_key_figures_first(results):
    """The key figures of a project's contract lead its section, in the contract's order, before
    its other figures (by name); a key figure not drawn is skipped."""
    from xlalab.pipeline.contract import load_project

    expected = {}
    for name in results:
        key = load_project(name).key_figures
        assert key, f"{name} names no key figure"
        figures = Path(f"plots/{name}/figures")
        assert len(key) > 1
        drawn = list(key[:-1])  # the last one is not drawn
        (figures / key[-1]).unlink(missing_ok=True)
        for i, file in enumerate([*drawn, "aaa_first_by_name.png"]):
            Image.new("RGB", (30, 30 + i), (0, 90, 200)).save(figures / file)
        others = sorted(p.name for p in figures.glob("*.png") if p.name not in key)
        expected[name] = drawn + others
    assert cli.main(["report", "--link", "-o", "out/page.html"]) == 0
    page = Page(Path("out/page.html").read_text())
    for name, order in expected.items():
        shown = [Path(unquote(src)).name for section, src in page.images if section == name]
        assert shown == order


def test_a_corrupt_metrics_file_is_one_line(results, capsys):
    Path("metrics/housing.json").write_text("{")
    assert cli.main(["report"]) == 2
    assert "metrics/housing.json is not valid JSON" in capsys.readouterr().err


CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
    None,
)
# What the browser reports once the page has loaded: images that did not decode, and every
# resource it fetched that is not a local file.
PROBE = """<script>
window.addEventListener("load", () => {
  const broken = [...document.images].filter(i => !i.complete || i.naturalWidth === 0).length;
  const remote = performance.getEntriesByType("resource").map(e => e.name)
    .filter(n => !n.startsWith("file:") && !n.startsWith("data:"));
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({images: document.images.length, broken, remote});
  document.body.appendChild(out);
});
</script>"""


@pytest.mark.skipif(
    CHROMIUM is None, reason="no headless Chromium installed (apt-get install chromium)"
)
@pytest.mark.parametrize("link", [False, True])
def test_every_image_loads_in_a_browser_without_network(results, tmp_path, link):
    assert cli.main(["report", *(["--link"] if link else [])]) == 0
    page = Path("reports/index.html")
    probed = page.with_name("probed.html")
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            # Any network request would go to a closed port, and fail.
            "--proxy-server=127.0.0.1:9",
            "--virtual-time-budget=5000",
            "--dump-dom",
            probed.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout)
    assert found, f"the page did not finish loading:\n{done.stderr[-2000:]}"
    probe = json.loads(html.unescape(found.group(1)))
    assert probe == {"images": len(results) * len(FIGURES), "broken": 0, "remote": []}
