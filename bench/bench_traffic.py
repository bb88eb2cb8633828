"""Throughput and peak memory of the traffic project's streamed featurize and scoring on a
generated file in NSL-KDD layout (no header, 43 fields), by default 5 M rows.

    PYTHONPATH=src python bench/bench_traffic.py --rows 5000000

The file is built by repeating the shipped KDDTest+ records (so values, categories and the label
mix are real) in a temporary folder; download, featurize and the
scoring of every default detector (Isolation Forest, the autoencoder, ECOD, COPOD) then stream
through it exactly as `dvc repro` would (source nsl_kdd). Peak memory is the
process's maximum resident set size (ru_maxrss).
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from xlalab.core.runner import run_stage  # noqa: E402
from xlalab.traffic import data  # noqa: E402


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--chunk-rows", type=int, default=200_000)
    args = parser.parse_args()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = tmp / "NSL-KDD"
        folder.mkdir()
        with gzip.open(data.OFFLINE_DIR / data.OFFLINE_FILES["train"], "rb") as f:
            (folder / "KDDTrain+.txt").write_bytes(f.read())
        with gzip.open(data.OFFLINE_DIR / data.OFFLINE_FILES["test"], "rb") as f:
            block = f.read()
        per_block = block.count(b"\n")
        with open(folder / "KDDTest+.txt", "wb") as out:
            for _ in range(args.rows // per_block):
                out.write(block)
            out.write(b"".join(block.splitlines(keepends=True)[: args.rows % per_block]))
        size_mb = (folder / "KDDTest+.txt").stat().st_size / 2**20
        print(f"generated {args.rows} rows ({size_mb:.0f} MB) in NSL-KDD layout", file=sys.stderr)

        p = copy.deepcopy(params)
        p["traffic"]["download"].update(
            source="nsl_kdd", path=str(folder), chunk_rows=args.chunk_rows
        )
        p["traffic"]["featurize"]["chunk_rows"] = args.chunk_rows
        p["traffic"]["evaluate"][
            "study_sets"
        ] = []  # scoring only: the study is the same work again per set
        p["runtime"]["backend"] = "accelerate"
        cwd = os.getcwd()
        os.chdir(tmp)
        results = {"rows": args.rows, "file_mb": round(size_mb, 1)}
        try:
            for stage in ("download", "featurize", "train", "evaluate"):
                start = time.perf_counter()
                run_stage("traffic", stage, p)
                seconds = time.perf_counter() - start
                results[stage] = {
                    "seconds": round(seconds, 1),
                    "rows_per_s": round(args.rows / seconds),
                    "peak_rss_mb_so_far": round(peak_mb()),
                }
                print(
                    f"{stage}: {seconds:.1f} s, {args.rows / seconds:,.0f} rows/s, peak RSS "
                    f"{peak_mb():.0f} MB",
                    file=sys.stderr,
                )
        finally:
            os.chdir(cwd)
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
