"""imdb at full size: download and featurize of 50,000 generated reviews with IMDb's length
distribution, in Kaggle's CSV layout and in Stanford's aclImdb layout (folder and archive), each
stage run as its own process with a params file (offline MiniLM tokenizer, max_length 512, buckets
128/256, every row kept), beside plain baselines run the same way on the same files:

- download: pandas reading the CSV; a Python loop reading every aclImdb file;
- featurize: the whole table tokenized at once and padded to 512 tokens as int64 tensors (what
  featurize did before it wrote compact token files chunk by chunk).

For every process: wall time, peak memory (``ru_maxrss`` from ``os.wait4``) and the bytes it wrote.

    python bench/scale_text.py                 # 50,000 reviews (about 10 minutes on 2 cores)
    python bench/scale_text.py --reviews 2000  # a quick run
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import imdb_like

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"

READ_CSV = """
import sys, pandas as pd
pd.read_csv(sys.argv[1])
"""
READ_FILES = """
import sys
from pathlib import Path
files = sorted(Path(sys.argv[1]).glob("*/*/*.txt"))
texts = [p.read_text() for p in files if "unsup" not in p.parts]
"""
PADDED_INT64 = """
import sys, pandas as pd, torch
from safetensors.torch import save_file
from xlalab.textclf import model
texts = pd.read_parquet(sys.argv[1] + "/train.parquet")["text"].tolist()
texts += pd.read_parquet(sys.argv[1] + "/test.parquet")["text"].tolist()
tokenizer = model.load_tokenizer(model.pretrained(model.OFFLINE_MINILM, None))
encoded = tokenizer(texts, truncation=True, padding="max_length", max_length=512,
                    return_tensors="pt")
save_file({k: encoded[k].long().contiguous() for k in ("input_ids", "attention_mask")},
          sys.argv[2] + "/tokens.safetensors")
"""


@dataclass
class Measured:
    what: str
    seconds: float
    peak_mb: float
    written_mb: float


# A process's peak memory (ru_maxrss) counts what it held before exec, and a forked child starts
# holding its parent's pages: a child of this (or the calling) process would report at least this
# process's size. So each command is started by a bare interpreter (python -S, a few MB), which
# forks it, waits for it with os.wait4 and writes its peak and exit status to a file.
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(f"{usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def run(argv: list[str], cwd: Path, written: Path | None) -> tuple[float, float, float]:
    """(wall seconds, peak resident MB, MB under ``written`` afterwards) of one process."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1"}
    report = cwd / ".peak"
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-S", "-c", LAUNCHER, str(report), *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    seconds = time.perf_counter() - start
    peak_kb, code = map(int, report.read_text().split())
    report.unlink()
    if code != 0:
        raise SystemExit(f"{' '.join(argv)} failed in {cwd}")
    return seconds, peak_kb / 1024, size_mb(written) if written else 0.0


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20


def params_for(source: str, path: Path) -> dict:
    """params.yaml with imdb on ``source`` at full size: every row, up to 512 tokens."""
    params = copy.deepcopy(yaml.safe_load((ROOT / "params.yaml").read_text()))
    params["imdb"]["download"].update(source=source, path=str(path))
    params["imdb"]["featurize"].update(
        max_length=512, buckets=[128, 256], max_train=None, max_val=None, max_test=None
    )
    return params


def stage(name: str, module: str, folder: Path, output: str) -> Measured:
    seconds, peak, written = run(
        [sys.executable, "-m", f"xlalab.imdb.{module}"], folder, folder / output
    )
    return Measured(name, seconds, peak, written)


def pipeline(label: str, source: str, path: Path, work: Path, featurize: bool) -> list[Measured]:
    folder = work / f"run-{label.replace(' ', '-')}"
    folder.mkdir()
    (folder / "params.yaml").write_text(yaml.safe_dump(params_for(source, path)))
    found = [stage(f"download, {label}", "data", folder, "data/imdb/raw")]
    if featurize:
        found.append(stage(f"featurize, {label}", "features", folder, "data/imdb/features"))
    return found


def baselines(csv: Path, acl: Path, raw: Path, work: Path) -> list[Measured]:
    out = work / "plain-featurize"
    out.mkdir()
    python = sys.executable
    found = []
    for what, argv, written in (
        ("plain: pandas.read_csv", [python, "-c", READ_CSV, str(csv)], None),
        ("plain: Python loop over the aclImdb files", [python, "-c", READ_FILES, str(acl)], None),
        (
            "plain: tokenize all at once, int64 padded to 512",
            [python, "-c", PADDED_INT64, str(raw), str(out)],
            out,
        ),
    ):
        found.append(Measured(what, *run(argv, work, written)))
    return found


def table(rows: list[Measured], reviews: int) -> str:
    lines = [
        f"imdb at {reviews:,} generated reviews (IMDb's length distribution)",
        "",
        "| stage, input | wall s | peak memory MB | written MB |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r.what} | {r.seconds:.1f} | {r.peak_mb:,.0f} | {r.written_mb:,.1f} |" for r in rows
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="scale-text-") as tmp:
        work = Path(tmp)
        df = imdb_like.reviews(args.reviews, args.seed)
        csv = imdb_like.write_kaggle_csv(df, work / "IMDB Dataset.csv")
        acl = imdb_like.write_aclimdb(df, work)
        archive = work / "aclImdb_v1.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(acl, arcname="aclImdb")
        del df
        rows = pipeline("Kaggle CSV", "kaggle", csv, work, featurize=True)
        rows += pipeline("aclImdb folder", "aclimdb", acl, work, featurize=True)
        rows += pipeline("aclImdb_v1.tar.gz", "aclimdb", archive, work, featurize=False)
        raw = work / "run-aclImdb-folder" / "data" / "imdb" / "raw"
        rows += baselines(csv, acl, raw, work)
    text = table(rows, args.reviews)
    print(text)
    return text


if __name__ == "__main__":
    main()
