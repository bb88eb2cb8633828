"""The installs per hardware (docs/install.md) stay consistent with the pinned stack: the CPU-only
lock is requirements.lock without the CUDA libraries, the `tpu` extra resolves to the pinned
torch_xla with its TPU runtime, and the CPU wheels it names exist. The resolving tests need a
package index and are skipped when none answers (CI has one)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PYPI = "https://pypi.org/simple"
CUDA_ONLY = re.compile(r"^(nvidia-[a-z-]+-cu12|triton)==")


def pins(lock: str) -> dict[str, str]:
    lines = (ROOT / lock).read_text().splitlines()
    found = (line.split("==") for line in lines if line and not line.startswith("#"))
    return {name.lower().replace("_", "-"): version for name, version in found}


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10):
            return True
    except OSError:
        return False


def test_the_cpu_lock_is_the_lock_without_cuda():
    full, cpu = pins("requirements.lock"), pins("requirements-cpu.lock")
    cuda = {name for name in full if CUDA_ONLY.match(f"{name}==")}
    assert len(cuda) == 16 and "nvidia-ml-py" not in cuda  # dvclive's NVML bindings stay
    assert cpu == {
        name: version + ("+cpu" if name in ("torch", "torchvision") else "")
        for name, version in full.items()
        if name not in cuda
    }


def test_the_tpu_lock_pins_the_runtime_torch_xla_asks_for():
    tpu, full = pins("requirements-tpu.lock"), pins("requirements.lock")
    asked = [r for r in metadata.requires("torch_xla") if 'extra == "tpu"' in r]
    assert any(r.startswith(f"libtpu=={tpu['libtpu']}") for r in asked), asked
    assert full["torch-xla"] == "2.9.0" and "tpu-info" in tpu
    assert not set(tpu) & set(full)  # it only adds packages


@pytest.mark.network
@pytest.mark.skipif(not answers(f"{PYPI}/libtpu/"), reason="no package index answers")
def test_the_tpu_extra_resolves_to_exactly_the_tpu_lock(tmp_path):
    report = tmp_path / "report.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--quiet",
            "--report",
            str(report),
            "-c",
            "requirements.lock",
            "-c",
            "requirements-tpu.lock",
            "-e",
            ".[tpu]",
        ],  # fmt: skip
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    added = {
        i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"]
        for i in json.loads(report.read_text())["install"]
    }
    assert added.pop("xlalab") == "0.1.0"
    # Everything the extra adds is in requirements-tpu.lock; the rest of the stack stays as pinned.
    assert added == pins("requirements-tpu.lock")


@pytest.mark.network
@pytest.mark.skipif(
    not answers(f"{CPU_INDEX}/torch/"), reason="PyTorch's CPU index does not answer"
)
def test_the_cpu_wheels_exist_for_this_python():
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    for name, version in pins("requirements-cpu.lock").items():
        if version.endswith("+cpu"):
            with urllib.request.urlopen(f"{CPU_INDEX}/{name}/", timeout=30) as page:
                files = page.read().decode()
            wheel = rf"{name}-{re.escape(version.replace('+', '%2B'))}-{tag}-{tag}-manylinux"
            assert re.search(wheel, files) or re.search(wheel.replace("%2B", r"\+"), files), name
