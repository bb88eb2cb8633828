"""Wall time, peak memory and rows/s of every traffic stage on a generated file in NSL-KDD layout
(no header, 43 fields), 5 M rows by default, beside a plain baseline measured in the same run:
reading the same file with pandas.

    PYTHONPATH=src python bench/scale_traffic.py                 # 5 M rows
    PYTHONPATH=src python bench/scale_traffic.py --rows 200000   # a quick run

The test file repeats the shipped KDDTest+ records (values, categories and the label mix are real,
and the metrics equal those of one copy: a check that streaming changes nothing); the training file
is the shipped KDDTrain+_20Percent. Each stage runs as `dvc repro` would run it (``python -m
xlalab.traffic.<module>`` in a scratch folder holding params.yaml, source ``nsl_kdd``, the
feature-set study off), in its own process: its peak memory is that process's maximum resident set
size (``os.wait4``). Evaluate also reports its scoring time per detector; "scoring rows/s" is the
test rows over the time all default detectors took to score them.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from xlalab.traffic.project import PROJECT  # noqa: E402
from xlalab.traffic.sources import offline  # noqa: E402

STAGES = ("download", "featurize", "train", "evaluate", "plot")
BASELINE = "import sys, pandas as pd; pd.read_csv(sys.argv[1], header=None, low_memory=False)"


def generate(folder: Path, rows: int) -> Path:
    """KDDTrain+.txt (the shipped 20 % file) and a KDDTest+.txt of ``rows`` test records."""
    folder.mkdir(parents=True)
    with gzip.open(offline.OFFLINE_DIR / offline.OFFLINE_FILES["train"], "rb") as f:
        (folder / "KDDTrain+.txt").write_bytes(f.read())
    with gzip.open(offline.OFFLINE_DIR / offline.OFFLINE_FILES["test"], "rb") as f:
        block = f.read()
    lines = block.splitlines(keepends=True)
    test = folder / "KDDTest+.txt"
    with open(test, "wb") as out:
        for _ in range(rows // len(lines)):
            out.write(block)
        out.write(b"".join(lines[: rows % len(lines)]))
    return test


def measure(command: list[str], cwd: Path, log: Path) -> dict:
    """Run ``command``; its wall time and the peak resident memory of its process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    start = time.perf_counter()
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=out)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        tail = log.read_text().strip().splitlines()[-5:]
        raise SystemExit(f"{' '.join(command)} failed:\n" + "\n".join(tail))
    return {"seconds": round(seconds, 2), "peak_mb": round(usage.ru_maxrss / 1024)}


def stage_params(folder: Path, chunk_rows: int) -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    p = copy.deepcopy(params)
    p["traffic"]["download"].update(source="nsl_kdd", path=str(folder), chunk_rows=chunk_rows)
    p["traffic"]["featurize"]["chunk_rows"] = chunk_rows
    p["traffic"]["evaluate"]["study_sets"] = []  # the study repeats the scoring once per set
    p["runtime"]["backend"] = "accelerate"
    return p


def table(results: dict) -> str:
    rows, base = results["rows"], results["pandas_read_csv"]
    lines = [
        "| step | seconds | rows/s | peak memory (MB) | time vs pandas read | memory vs pandas |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in ("pandas_read_csv", *STAGES, "scoring"):
        r = results.get(name)
        if r is None:
            continue
        peak = f"{r['peak_mb']:,}" if "peak_mb" in r else ""
        memory = f"{r['peak_mb'] / base['peak_mb']:.2f}" if "peak_mb" in r else ""
        lines.append(
            f"| {name} | {r['seconds']:.1f} | {rows / r['seconds']:,.0f} | {peak} | "
            f"{r['seconds'] / base['seconds']:.2f} | {memory} |"
        )
    return "\n".join(lines)


def detector_table(scoring: dict, rows: int) -> str:
    lines = ["| detector | scoring seconds | rows/s |", "|---|---:|---:|"]
    for name, seconds in scoring["seconds"].items():
        lines.append(f"| {name} | {seconds:.1f} | {rows / max(seconds, 1e-9):,.0f} |")
    return "\n".join(lines)


def run(rows: int, chunk_rows: int, workdir: Path) -> dict:
    folder = workdir / "NSL-KDD"
    test = generate(folder, rows)
    (workdir / "params.yaml").write_text(yaml.safe_dump(stage_params(folder, chunk_rows)))
    results: dict = {"rows": rows, "file_mb": round(test.stat().st_size / 2**20, 1)}
    results["load_before"] = [round(x, 2) for x in os.getloadavg()]
    command = [sys.executable, "-c", BASELINE, str(test)]
    results["pandas_read_csv"] = measure(command, workdir, workdir / "baseline.log")
    for stage in STAGES:
        module = PROJECT.stage(stage).module
        results[stage] = measure([sys.executable, "-m", module], workdir, workdir / f"{stage}.log")
        print(f"{stage}: {results[stage]}", file=sys.stderr, flush=True)
    details = workdir / "reports" / "traffic" / "details.json"  # evaluate's, beside the metrics
    metrics = json.loads(details.read_text())
    # the scorers' times are in the timing file (kept out of the git-tracked details)
    timing = json.loads((workdir / "timing" / "traffic.json").read_text())["scoring"]
    results["scoring"] = {"seconds": sum(timing["seconds"].values())}
    results["detectors"] = {**metrics["scoring"], **timing}
    results["headline"] = {
        k: metrics["verdict"][k] for k in ("model", "score", "best_baseline", "verdict")
    }
    results["load_after"] = [round(x, 2) for x in os.getloadavg()]
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="test rows to generate")
    parser.add_argument("--chunk-rows", type=int, default=200_000, help="rows per streamed chunk")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="scale-traffic-") as tmp:
        results = run(args.rows, args.chunk_rows, Path(tmp))
    print(
        f"{args.rows:,} test rows ({results['file_mb']} MB); load average before "
        f"{results['load_before']}, after {results['load_after']}\n"
    )
    print(table(results) + "\n")
    print(detector_table(results["detectors"], args.rows) + "\n")
    print(f"verdict: {results['headline']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
