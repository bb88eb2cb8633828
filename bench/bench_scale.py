"""Every project that reads real data at full size, at the sizes the real sources have, each stage
beside a plain baseline measured in the same run: time, peak memory and bytes written.

    PYTHONPATH=src python bench/bench_scale.py             # full size: about 40 minutes on 2 cores
    PYTHONPATH=src python bench/bench_scale.py --quick     # a tenth or less of it, a few minutes
    PYTHONPATH=src python bench/bench_scale.py --only traffic

- cifar10 (``scale_cifar10.py``): 50,000 generated 32-px PNGs in Kaggle's layout and one folder
  per class; download and featurize at ``train.image_size: 224``, beside a PIL loop over the files.
- imdb (``scale_text.py``): 50,000 generated reviews with IMDb's length distribution, as Kaggle's
  CSV and as Stanford's aclImdb folder and archive; download and featurize, beside pandas and a
  Python loop reading the same files.
- traffic (``scale_traffic.py``): 5 M rows in NSL-KDD's layout through every stage, beside pandas
  reading the same file; the targets are 1.5 GB peak and 100 k rows/s scoring.

Each part runs its stages as separate processes (as ``dvc repro`` does) in a temporary folder and
prints its own table; ``--json`` keeps them all.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale_cifar10
import scale_text
import scale_traffic

FULL = {
    "cifar10": ["--images", "50000"],
    "imdb": ["--reviews", "50000"],
    "traffic": ["--rows", "5000000"],
}
QUICK = {
    "cifar10": ["--images", "5000"],
    "imdb": ["--reviews", "2000"],
    "traffic": ["--rows", "200000"],
}
PARTS = {"cifar10": scale_cifar10.main, "imdb": scale_text.main, "traffic": scale_traffic.main}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, to check it runs")
    parser.add_argument("--only", choices=sorted(PARTS), action="append", help="one part (repeat)")
    parser.add_argument("--json", type=Path, help="write every part's results here")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    results = {}
    for name in args.only or list(PARTS):
        print(f"\n## {name} ({' '.join(sizes[name])})\n", flush=True)
        began = time.perf_counter()
        results[name] = PARTS[name](sizes[name])
        print(f"\n{name}: {time.perf_counter() - began:.0f} s in all", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return results


if __name__ == "__main__":
    main()
