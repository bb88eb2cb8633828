"""dvc.yaml is right by construction, and stays so: it equals what the project contracts generate,
every stage depends on every xlalab module its code imports (checked two ways: the static import
graph, and the modules Python really loads when the stage's code is imported), and the params each
stage reads are the params it declares."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from xlalab.pipeline import dvcyaml as pipeline
from xlalab.pipeline.contract import built_projects
from xlalab.pipeline.params import param_keys

ROOT = Path(__file__).resolve().parents[1]
DVC_YAML = ROOT / "dvc.yaml"


def committed() -> dict:
    return yaml.safe_load(DVC_YAML.read_text())["stages"]


def uncovered(files: set[str], deps: list[str]) -> set[str]:
    """The files that no dep (a file or a folder above it) covers. An empty package marker
    (``__init__.py`` with no code) changes nothing a stage does, and dvc.yaml leaves it out."""
    return {
        f
        for f in files
        if not any(f == d or f.startswith(d.rstrip("/") + "/") for d in deps)
        and not (f.endswith("__init__.py") and not (ROOT / f).read_text().strip())
    }


def loaded_modules(modules: list[str]) -> dict[str, list[str]]:
    """For each module: the xlalab source files Python loads when it is imported in a fresh state
    (xlalab modules are dropped between imports; third-party ones stay cached, for speed)."""
    code = f"""
import importlib, json, sys
sys.path.insert(0, {str(ROOT / "src")!r})
result = {{}}
for name in {modules!r}:
    for m in [m for m in sys.modules if m == "xlalab" or m.startswith("xlalab.")]:
        del sys.modules[m]
    importlib.import_module(name)
    result[name] = sorted(m.__file__ for k, m in sys.modules.items()
                          if k.split(".")[0] == "xlalab" and getattr(m, "__file__", None))
print(json.dumps(result))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return json.loads(out.stdout.splitlines()[-1])


def test_dvc_yaml_is_what_the_contracts_generate():
    assert DVC_YAML.read_text() == pipeline.render(), (
        "dvc.yaml is stale: run `make dvc.yaml` and commit it"
    )


def test_every_stage_depends_on_the_code_it_statically_imports():
    stages = committed()
    for project in built_projects():
        for stage in project.stages:
            entry = stages[f"{project.name}-{stage.name}"]
            needed = set(pipeline.code_deps(project, stage))
            assert not uncovered(needed, entry["deps"]), f"{project.name}-{stage.name}"


def test_every_stage_depends_on_the_modules_python_loads_for_it():
    stages = committed()
    targets = {f"{p.name}-{s.name}": s.module for p in built_projects() for s in p.stages}
    loaded = loaded_modules(sorted(set(targets.values())))
    for name, module in targets.items():
        files = {Path(f).resolve().relative_to(ROOT).as_posix() for f in loaded[module]}
        assert not uncovered(files, stages[name]["deps"]), name


# The training engine: only stages that train or predict may depend on it (others may read its
# settings module, which holds the params sections the engine reads).
ENGINE = "src/xlalab/engine"
BACKEND = {f"{ENGINE}/{m}.py" for m in ("runtime", "loop", "recurrent")}


def test_only_stages_that_train_or_predict_depend_on_the_engine():
    stages = committed()
    for project in built_projects():
        for stage in project.stages:
            deps = set(stages[f"{project.name}-{stage.name}"]["deps"])
            if stage.reads_runtime:
                assert ENGINE in deps, f"{project.name}-{stage.name}"
            else:
                assert ENGINE not in deps and not deps & BACKEND, f"{project.name}-{stage.name}"
            assert "src/xlalab/cli.py" not in deps and "src/xlalab/__main__.py" not in deps


def test_dvc_yaml_reads_as_a_short_file_with_a_desc_on_every_stage():
    assert len(DVC_YAML.read_text().splitlines()) <= 400
    for name, entry in committed().items():
        assert 10 <= len(entry.get("desc", "")) <= 160, name
        module = entry["cmd"].split(" -m ")[1].split()[0]
        assert module.rsplit(".", 1)[1] == name.split("-", 1)[1], f"{name} runs {module}"


def changed_after_editing(tmp_path: Path, edited: str, params: dict | None = None) -> set[str]:
    """The stages whose deps `dvc status` reports as changed after ``edited`` changes, in a copy
    of the repository's tracked files (no outputs there: only the changed deps are read). With
    ``params`` ({dotted key: value}), params.yaml is edited instead and the stages whose params
    changed are returned."""
    copy = tmp_path / "repo"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split("\0")  # fmt: skip
    for rel in filter(None, tracked):
        if (ROOT / rel).is_file():
            (copy / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, copy / rel)
    if params is None:
        with open(copy / edited, "a") as f:
            f.write("# an edit\n")
    else:
        values = yaml.safe_load((copy / edited).read_text())
        for key, value in params.items():
            *parents, last = key.split(".")
            lookup(values, ".".join(parents))[last] = value
        (copy / edited).write_text(yaml.safe_dump(values, sort_keys=False))
    dvc = [str(Path(sys.executable).parent / "dvc")]
    subprocess.run([*dvc, "config", "core.no_scm", "true"], cwd=copy, check=True)
    out = subprocess.run([*dvc, "status", "--json"], cwd=copy, capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    status = json.loads(out)
    if params is not None:
        return {s for s, ch in status.items() if any("params.yaml" in _changed(c) for c in ch)}
    return {
        stage
        for stage, changes in status.items()
        if any(edited == d or edited.startswith(d + "/") for c in changes for d in _changed(c))
    }


def _changed(change: dict | str, kind: str = "deps") -> dict:
    """What `dvc status --json` lists as changed deps (or params) of one entry; a folder dep is
    listed by the folder's path."""
    return change.get(f"changed {kind}", {}) if isinstance(change, dict) else {}


def test_a_backend_change_reruns_only_the_stages_that_train_or_predict(tmp_path):
    expected = {f"{p.name}-{s.name}" for p in built_projects() for s in p.stages if s.reads_runtime}
    assert changed_after_editing(tmp_path, "src/xlalab/engine/runtime.py") == expected
    assert all(name.endswith(("-train", "-evaluate")) for name in expected)


def test_a_change_to_a_projects_own_module_reruns_only_that_project(tmp_path):
    changed = changed_after_editing(tmp_path, "src/xlalab/lstm/model.py")
    assert changed == {f"lstm-{s}" for s in ("download", "featurize", "train", "evaluate", "plot")}


def test_a_new_lstm_window_reruns_only_lstm_stages_past_download(tmp_path):
    # The window is featurize's param alone; train, evaluate and plot follow from its outputs,
    # which only lstm's stages read.
    assert changed_after_editing(tmp_path, "params.yaml", {"lstm.window": 30}) == {"lstm-featurize"}
    readers = {n for n, e in committed().items() if "data/lstm/features" in e["deps"]}
    assert readers == {"lstm-train", "lstm-evaluate"}


def test_a_plotting_change_reruns_only_the_plot_stages(tmp_path):
    expected = {f"{p.name}-plot" for p in built_projects()}
    assert changed_after_editing(tmp_path, "src/xlalab/results/plots.py") == expected


def test_the_check_fails_when_a_code_dep_is_dropped():
    project = built_projects()[0]
    stage = project.stages[2]
    deps = committed()[f"{project.name}-{stage.name}"]["deps"]
    dropped = next(d for d in deps if d.endswith(".py") and d.startswith("src/"))
    needed = set(pipeline.code_deps(project, stage))
    assert uncovered(needed, [d for d in deps if d != dropped]) == {dropped}


def test_each_stage_declares_exactly_the_params_its_code_parses():
    stages = committed()
    for project in built_projects():
        for stage in project.stages:
            declared = stages[f"{project.name}-{stage.name}"].get("params", [])
            assert declared == param_keys(stage.params, project.name)


def test_every_param_in_params_yaml_is_read_by_some_stage():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    read = {key for entry in committed().values() for key in entry.get("params", [])}
    for project in built_projects():
        for key in params[project.name]:
            assert f"{project.name}.{key}" in read, f"{project.name}.{key} is read by no stage"


@pytest.mark.parametrize("project", [p.name for p in built_projects()])
def test_the_default_params_pass_every_stage_check(project):
    from xlalab.pipeline.contract import load_project
    from xlalab.pipeline.params import load_params, parse

    params = load_params(ROOT / "params.yaml")
    for stage in load_project(project).stages:
        parse(stage.params, params, project)


def lookup(tree: dict, dotted: str):
    for key in dotted.split("."):
        tree = tree[key]
    return tree


def as_dvc_reads(value):
    """A params value as it reads back from dvc.lock, which DVC writes unquoted: YAML 1.1 then
    reads the string "no" (runtime.precision) as false."""
    if isinstance(value, dict):
        return {k: as_dvc_reads(v) for k, v in value.items()}
    return {"no": False, "yes": True}.get(value, value) if isinstance(value, str) else value


def test_dvc_lock_records_the_committed_code_and_params():
    """The committed metrics and plots come from the committed code: every file dep in the repo and
    every param value in dvc.lock equals what is checked in. (Data deps are DVC outputs, absent from
    a fresh clone, and are not checked.)"""
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    stale = []
    for name, entry in lock.items():
        for dep in entry.get("deps", []):
            path = ROOT / dep["path"]
            if (
                not dep["path"].startswith(("data/", "models/"))
                and path.is_file()
                and hashlib.md5(path.read_bytes()).hexdigest() != dep["md5"]
            ):
                stale.append(f"{name}: {dep['path']}")
        for key, value in entry.get("params", {}).get("params.yaml", {}).items():
            if as_dvc_reads(lookup(params, key)) != value:
                stale.append(f"{name}: {key}")
    assert not stale, (
        "dvc.lock is stale (run `make repro` and commit dvc.lock, metrics/ and plots/): "
        + ", ".join(stale)
    )


def test_stage_commands_run_the_code_of_the_copy_they_run_in(tmp_path):
    """Queued experiments run in copies of the repository (.dvc/tmp/exps/...): each stage's command
    must import xlalab from that copy's src/, not from the workspace the package was installed
    from."""
    prefixes = {entry["cmd"].split(" python -m xlalab.")[0] for entry in committed().values()}
    assert len(prefixes) == 1, prefixes
    shutil.copytree(
        ROOT / "src" / "xlalab",
        tmp_path / "src" / "xlalab",
        ignore=shutil.ignore_patterns("__pycache__", "*.gz"),
    )
    out = subprocess.run(
        [
            "bash",
            "-c",
            f"{prefixes.pop()} {sys.executable} -c 'import xlalab; print(xlalab.__file__)'",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(out.stdout.strip()).resolve() == (tmp_path / "src/xlalab/__init__.py").resolve()
