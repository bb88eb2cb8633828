"""The installs per platform and hardware (docs/install.md) stay consistent with the pinned stack:
one resolution (uv, from pyproject.toml) for Linux and macOS on Apple silicon, whose markers keep
torch_xla and the CUDA wheels to Linux x86-64; the CPU-only lock is requirements.lock without the
CUDA libraries; the `tpu` extra resolves to the pinned torch_xla with its TPU runtime. The tests
that ask a package index are skipped when none answers (CI has one)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import urllib.request
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PYPI = "https://pypi.org/simple"
CUDA_ONLY = re.compile(r"^(nvidia-[a-z-]+-cu12|triton)$")
UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")


def pins(lock: str) -> list[tuple[str, str, str]]:
    """(name, version, environment marker) of every pin of ``lock``; a package may be pinned twice,
    at two versions for two sets of Pythons or platforms."""
    found = []
    for line in (ROOT / lock).read_text().splitlines():
        if not line or line[0] in "# ":  # comments, and uv's indented "# via" annotations
            continue
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        found.append((normal(requirement.name), specifier.version, str(requirement.marker or "")))
    return found


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def versions(lock: str) -> dict[str, str]:
    """name -> version, for the locks' own pins (the newest where a package is pinned twice)."""
    return {name: version for name, version, _ in sorted(pins(lock), key=lambda p: p[:2])}


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10):
            return True
    except OSError:
        return False


# The platforms of [tool.uv] environments, as uv names them, with the marker values a machine of
# each one has. macOS at 14: faiss-cpu 1.15.1 publishes its Apple-silicon wheels for macOS 14+.
PLATFORMS = {  # name: (uv's --python-platform, macOS version, marker values)
    "linux-x86_64": (
        "x86_64-unknown-linux-gnu",
        None,
        {"sys_platform": "linux", "platform_machine": "x86_64"},
    ),
    "linux-aarch64": (
        "aarch64-unknown-linux-gnu",
        None,
        {"sys_platform": "linux", "platform_machine": "aarch64"},
    ),
    "macos-arm64": (
        "aarch64-apple-darwin",
        "14.0",
        {"sys_platform": "darwin", "platform_machine": "arm64"},
    ),
}


def applies(marker: str, platform: str, python: str = "3.11") -> bool:
    environment = {**PLATFORMS[platform][2], "python_full_version": f"{python}.0"}
    return not marker or Marker(marker).evaluate(environment)


def test_torch_xla_and_the_cuda_wheels_are_pinned_for_linux_x86_64_only():
    lock = pins("requirements.lock")
    linux_only = {"torch-xla"} | {name for name, _, _ in lock if CUDA_ONLY.match(name)}
    assert len(linux_only) == 17  # torch_xla and the 16 CUDA wheels PyPI's torch brings
    for platform in PLATFORMS:
        wanted = {name for name, _, marker in lock if applies(marker, platform)}
        if platform == "linux-x86_64":
            assert linux_only <= wanted
        else:
            assert not linux_only & wanted, platform
            assert {"torch", "torchvision", "accelerate", "faiss-cpu"} <= wanted
    environments = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]
    assert len(environments["environments"]) == len(PLATFORMS)


def test_the_cpu_lock_is_the_lock_without_cuda():
    full, cpu = versions("requirements.lock"), versions("requirements-cpu.lock")
    cuda = {name for name in full if CUDA_ONLY.match(name)}
    assert len(cuda) == 16 and "nvidia-ml-py" not in cuda  # dvclive's NVML bindings stay
    assert cpu == {
        name: version + ("+cpu" if name in ("torch", "torchvision") else "")
        for name, version in full.items()
        if name not in cuda
    }


def torch_xla_requirements() -> list[str] | None:
    """What the installed torch_xla asks for; None where it is not installed (macOS, arm64)."""
    try:
        return metadata.requires("torch_xla") or []
    except metadata.PackageNotFoundError:
        return None


@pytest.mark.skipif(torch_xla_requirements() is None, reason="torch_xla is not installed here")
def test_the_tpu_lock_pins_the_runtime_torch_xla_asks_for():
    tpu, full = versions("requirements-tpu.lock"), versions("requirements.lock")
    asked = [r for r in torch_xla_requirements() if 'extra == "tpu"' in r]
    assert any(r.startswith(f"libtpu=={tpu['libtpu']}") for r in asked), asked
    assert full["torch-xla"] == "2.9.0" and "tpu-info" in tpu
    assert not set(tpu) & set(full)  # it only adds packages
    markers = [marker for _, _, marker in pins("requirements-tpu.lock")]
    assert all(applies(m, "linux-x86_64") for m in markers)
    assert not any(applies(m, "macos-arm64") or applies(m, "linux-aarch64") for m in markers)


def needs_an_index(test):
    test = pytest.mark.skipif(UV is None, reason="uv is not installed (pip install -e .[test])")(
        test
    )
    test = pytest.mark.skipif(not answers(f"{PYPI}/torch/"), reason="no package index answers")(
        test
    )
    return pytest.mark.network(test)


def uv_compile(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [UV, "pip", "compile", "--quiet", "--no-header", "--no-annotate", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip


def read_resolved(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and line[0] not in "# "]
    return {
        normal(Requirement(line).name): str(Requirement(line).specifier).removeprefix("==")
        for line in lines
    }


@needs_an_index
@pytest.mark.parametrize("platform", PLATFORMS)
def test_every_pin_has_a_build_for_its_platform(platform, tmp_path):
    """uv resolves each pin of the lock that applies to ``platform`` (its markers evaluated for
    that platform, not this machine) against the index at Python 3.11 with --no-deps, so it fails
    when a pin has neither a wheel for that platform and Python nor an sdist."""
    target, macos, _ = PLATFORMS[platform]
    env = dict(os.environ, **({"MACOSX_DEPLOYMENT_TARGET": macos} if macos else {}))
    resolved = tmp_path / "resolved.txt"
    done = uv_compile(
        "requirements.lock", "--no-deps", "--python-platform", target,
        "--python-version", "3.11", "-o", str(resolved), env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    expected = {
        name: version
        for name, version, marker in pins("requirements.lock")
        if applies(marker, platform)
    }
    assert read_resolved(resolved) == expected


@needs_an_index
def test_the_lock_is_what_uv_resolves_from_pyproject(tmp_path):
    """requirements.lock is pyproject.toml resolved (make lock): re-resolving it, with the lock's
    pins as uv's preferences, changes no pin. A dependency added to pyproject.toml without
    `make lock` fails here."""
    resolved = tmp_path / "requirements.lock"
    shutil.copy(ROOT / "requirements.lock", resolved)  # uv prefers the pins of its output file
    done = uv_compile(
        "pyproject.toml", "--universal", "--python-version", "3.11", "--extra", "test",
        "--no-emit-package", "setuptools", "-o", str(resolved),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert read_resolved(resolved) == versions("requirements.lock")


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
    assert added == versions("requirements-tpu.lock")


@pytest.mark.network
@pytest.mark.skipif(
    not answers(f"{CPU_INDEX}/torch/"), reason="PyTorch's CPU index does not answer"
)
def test_the_cpu_wheels_exist_for_this_python():
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    for name, version in versions("requirements-cpu.lock").items():
        if version.endswith("+cpu"):
            with urllib.request.urlopen(f"{CPU_INDEX}/{name}/", timeout=30) as page:
                files = page.read().decode()
            wheel = rf"{name}-{re.escape(version.replace('+', '%2B'))}-{tag}-{tag}-manylinux"
            assert re.search(wheel, files) or re.search(wheel.replace("%2B", r"\+"), files), name
