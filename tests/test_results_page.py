"""`xlalab report`: one static page with every project's verdict, its scores beside its baselines
(printed as `xlalab summary` prints them), the table over seeds, what its stages cost, and its
figures with captions, readable offline. Checked on the metrics and details the runner writes from
a Report (and on the layout before it), as HTML, and in a headless browser where one is
installed."""

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

from xlalab import PROJECTS, cli, numbers
from xlalab.pipeline.report import Report
from xlalab.results import captions, evidence, seed_table

TEXT_FIGURES = ("confusion", "training_curves")
FIGURES = {  # two figures a project, named as its plot stage names them
    "cifar10": TEXT_FIGURES,
    "imdb": TEXT_FIGURES,
    "reviews": TEXT_FIGURES,
    "lstm": ("forecast", "training"),
    "housing": ("cv_scores", "shap_boosting_beeswarm"),
}
ROOT = Path(__file__).resolve().parents[1]


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


RUNTIME = {"backend": "xla", "device_type": "tpu", "device_count": 4}
SEEDS = {
    "imdb": seed_table.aggregate(
        "imdb",
        [
            {
                "seed": s,
                "state": "success",
                "model": "bert",
                "metric": "accuracy",
                "higher_is_better": True,
                "score": 0.75 + s / 100,
                "best_baseline": "coin",
                "difference": 0.01 * s,
                "verdict": "ties",
            }
            for s in (0, 1, 2)
        ],
    )
}


@pytest.fixture
def results(tmp_path, monkeypatch):
    """A workspace where every project but traffic has results and two PNG figures: cifar10 beats,
    imdb ties or loses (no better than chance), lstm has the layout before the Report (its
    details inside its metrics file); imdb's stages have costs; a table over seeds."""
    monkeypatch.chdir(tmp_path)
    verdicts = {"cifar10": new_verdict("cnn", True), "imdb": new_verdict("bert", False)}
    verdicts |= {"lstm": new_verdict("lstm", True), "housing": new_verdict("blend", True)}
    verdicts["reviews"] = new_verdict("finetuned", True)
    Path("metrics").mkdir()
    for name, verdict in verdicts.items():
        if name == "lstm":
            older = {"verdict": verdict, "data": {"source": "offline-lstm"}, "runtime": RUNTIME}
            Path("metrics/lstm.json").write_text(json.dumps(older))
        else:
            report = Report.judged(
                verdict, test_rows=300, source=f"offline-{name}", runtime=RUNTIME,
                warnings=[f"{name}: training had not settled"],
            )  # fmt: skip
            Path(f"metrics/{name}.json").write_text(json.dumps(report.metrics()))
            Path(f"reports/{name}").mkdir(parents=True)
            details = json.dumps(report.details_record())
            Path(f"reports/{name}/details.json").write_text(details)
        figures = Path(f"plots/{name}/figures")
        figures.mkdir(parents=True)
        for i, stem in enumerate(FIGURES[name]):
            Image.new("RGB", (40 + i, 30), (i * 90, 20, 200)).save(figures / f"{stem}.png")
    Path("timing/cost").mkdir(parents=True)
    cost = {"seconds": 1234.56, "peak_memory_mb": 2048, "processes": 1}
    Path("timing/cost/imdb-train.json").write_text(json.dumps(cost))
    Path("timing/imdb.json").write_text(json.dumps({"speed": {"train_samples_per_sec": 55.7}}))
    Path("docs").mkdir()
    Path("docs/seeds.json").write_text(json.dumps(SEEDS))
    return verdicts


def test_the_page_holds_every_verdict_with_its_intervals_and_every_figure(results):
    assert cli.main(["report"]) == 0
    text = Path("reports/index.html").read_text()
    page = Page(text)
    assert set(page.sections) == set(PROJECTS)
    for name, verdict in results.items():
        section = page.sections[name]
        assert {"beats": "beats its", "ties": "ties with", "loses": "loses to"}[
            verdict["verdict"]
        ] in section
        assert "accuracy ↑" in section
        for baseline, entry in verdict["baselines"].items():
            assert f"{baseline}baseline" in section or f"{baseline}strongest baseline" in section
            assert numbers.with_interval(entry["score"], entry["interval"]) in section
        difference = numbers.with_interval(
            verdict["difference"], verdict["difference_interval"], sign=True
        )
        assert f"difference {difference} (95 %)" in section
        assert f"{difference}" in text.split("<h2>Over seeds</h2>")[0]  # the results table
        if name != "lstm":
            assert f"{name}: training had not settled" in section
        for stem in FIGURES[name]:
            assert captions.caption(name, stem) in section  # what it shows, not its file name
            assert f"{stem}.png" not in section
    assert results["cifar10"]["verdict"] == "beats"
    assert results["imdb"]["verdict"] in ("ties", "loses")
    assert "Not evaluated yet" in page.sections["traffic"]
    assert "1,234.6" in page.sections["imdb"] and "2,048" in page.sections["imdb"]
    assert "speed.train_samples_per_sec 55.7" in page.sections["imdb"]
    assert "What its stages cost" not in page.sections["cifar10"]  # no timings: nothing said
    assert " | ".join(seed_table.cells(SEEDS["imdb"])) in seeds_text(text)
    # every figure is in its project's section, embedded byte for byte
    for name in results:
        embedded = [src for section, src in page.images if section == name]
        stems = sorted(FIGURES[name])
        files = [Path(f"plots/{name}/figures/{stem}.png").read_bytes() for stem in stems]
        prefix = "data:image/png;base64,"
        assert all(src.startswith(prefix) for src in embedded)
        assert [base64.b64decode(src[len(prefix) :]) for src in embedded] == files


def seeds_text(text: str) -> str:
    """The table over seeds as text, its cells joined with `` | ``."""
    part = text.split("<h2>Over seeds</h2>")[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", part)
    return "\n".join(
        " | ".join(html.unescape(c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row))
        for row in rows
    )


def test_every_committed_figure_has_a_caption():
    figures = subprocess.run(
        ["git", "ls-files", "plots/*/figures/*.png"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert figures
    missing = [f for f in figures if captions.caption(f.split("/")[1], Path(f).stem) is None]
    assert not missing, f"add their captions to src/xlalab/results/captions.py: {missing}"
    assert "SHAP" in captions.caption("housing", "shap_boosting_beeswarm")
    assert "boosting" in captions.caption("housing", "shap_boosting_beeswarm")


def test_linked_figures_resolve_and_nothing_points_at_the_network(results):
    assert cli.main(["report", "--link", "-o", "out/page.html"]) == 0
    text = Path("out/page.html").read_text()
    page = Page(text)
    assert len(page.images) == 2 * len(results)
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
    assert probe == {"images": 2 * len(results), "broken": 0, "remote": []}
