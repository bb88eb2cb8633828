"""cifar10's download and featurize at CIFAR-10's full size, on generated images, beside a plain
baseline measured in the same run.

    PYTHONPATH=src python bench/scale_cifar10.py                # 50,000 images
    PYTHONPATH=src python bench/scale_cifar10.py --images 5000  # a quick run

It writes N random 32x32 RGB PNG images (N/10 a class) in a temporary folder and lays the same
files out twice (hard links): as Kaggle's CIFAR-10 download (``trainLabels.csv`` +
``train/<id>.png``, what the ``kaggle`` source reads) and as one folder per class
(``train/<class>/<n>.png``, the ``folder`` source). For each layout it runs download, then
featurize with ``train.image_size: 224``, as subprocesses (``python -m
xlalab.cifar10.download``, ...)
from a params file, and prints each one's wall time, peak memory (the child's maximum resident set
size, from ``os.wait4``) and the bytes it wrote. The baseline is a plain loop that opens every
file with PIL and stacks the pixels into one array, run as a subprocess the same way; the
start-up row is what a stage costs before it reads anything (Python and its imports). Targets:
featurize at 224 px writes at most 400 MB and peaks at most 2 GB (it stores 32-px images).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from xlalab.cifar10.sources.raw import CLASSES_CIFAR10 as CLASSES  # noqa: E402

WRITES_AT_MOST_MB, PEAKS_AT_MOST_MB = 400, 2048  # featurize at 224 px, 50,000 images

PIL_LOOP = """
import sys
from pathlib import Path
import numpy as np
from PIL import Image
files = sorted(Path(sys.argv[1]).rglob("*.png"))
images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
print(np.stack(images).shape)
"""


def generate(folder: Path, n: int, seed: int) -> None:
    """``n`` random PNGs in both layouts: ``kaggle/train/<id>.png`` + ``kaggle/trainLabels.csv``,
    and the same files hard-linked as ``folder/train/<class>/<n>.png``."""
    rng = np.random.default_rng(seed)
    labels = [CLASSES[i % 10] for i in range(n)]
    pixels = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    (folder / "kaggle" / "train").mkdir(parents=True)
    for c in CLASSES:
        (folder / "per_class" / "train" / c).mkdir(parents=True)

    def write(i: int) -> None:
        from PIL import Image

        png = folder / "kaggle" / "train" / f"{i + 1}.png"
        Image.fromarray(pixels[i]).save(png)
        os.link(png, folder / "per_class" / "train" / labels[i] / f"{i + 1:05d}.png")

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(write, range(n)))
    rows = "".join(f"{i + 1},{label}\n" for i, label in enumerate(labels))
    (folder / "kaggle" / "trainLabels.csv").write_text("id,label\n" + rows)


def run(argv: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MB) of one subprocess."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{tail}")
    return seconds, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def stage_params(source: str, path: Path) -> dict:
    params = copy.deepcopy(yaml.safe_load((ROOT / "params.yaml").read_text()))
    section = params["cifar10"]
    section["download"].update(source=source, path=str(path), storage_size=None)
    section["featurize"]["max_train"] = None
    section["train"]["image_size"] = 224  # read by train only: featurize must not care
    return params


def measure(name: str, argv: list[str], cwd: Path, repeats: int, written: Path | None) -> dict:
    runs = [run(argv, cwd) for _ in range(repeats)]
    return {
        "step": name,
        "seconds": statistics.median(s for s, _ in runs),
        "peak_mb": max(m for _, m in runs),
        "written_mb": size_mb(written) if written is not None else 0.0,
    }


def table(rows: list[dict]) -> str:
    base = rows[0]["seconds"]
    lines = [
        "| step | wall s | peak memory MB | written MB | time / PIL loop |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['step']} | {r['seconds']:.1f} | {r['peak_mb']:.0f} | {r['written_mb']:.0f} | "
            f"{r['seconds'] / base:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=50_000, help="images to generate")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each step (median)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="scale_cifar10_") as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        generate(tmp / "images", args.images, args.seed)
        print(f"generated {args.images} PNGs in {time.perf_counter() - start:.1f} s", flush=True)
        loop = [py, "-c", PIL_LOOP, str(tmp / "images" / "per_class")]
        rows = [measure("PIL loop over the files (baseline)", loop, tmp, args.repeats, None)]
        # What every stage pays before reading a file: Python, its imports, the params check.
        start_up = [py, "-c", "import xlalab.cifar10.download, xlalab.cifar10.featurize"]
        rows.append(measure("stage start-up (imports only)", start_up, tmp, args.repeats, None))
        for source, folder in (("kaggle", "kaggle"), ("folder", "per_class")):
            work = tmp / f"run_{source}"
            work.mkdir()
            params = stage_params(source, tmp / "images" / folder)
            (work / "params.yaml").write_text(yaml.safe_dump(params))
            for stage, module, out in (
                ("download", "data", "raw"),
                ("featurize (image_size 224)", "features", "features"),
            ):
                argv_ = [py, "-m", f"xlalab.cifar10.{module}", "-q"]
                written = work / "data" / "cifar10" / out
                rows.append(measure(f"{source} {stage}", argv_, work, args.repeats, written))
    print(f"\n{args.images} images, 32x32 RGB PNG; median of {args.repeats} run(s)\n")
    print(table(rows))
    featurize = [r for r in rows if "featurize" in r["step"]]
    fits = all(
        r["written_mb"] <= WRITES_AT_MOST_MB and r["peak_mb"] <= PEAKS_AT_MOST_MB for r in featurize
    )
    print(
        f"\nfeaturize within {WRITES_AT_MOST_MB} MB written and {PEAKS_AT_MOST_MB} MB peak: "
        f"{'yes' if fits else 'NO'}"
    )
    return rows


if __name__ == "__main__":
    main()
