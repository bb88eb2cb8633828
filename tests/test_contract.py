"""The project contract: params parsed once with one-line errors, inputs checked, and outputs that
appear only when a stage succeeds."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import typing
from pathlib import Path
from typing import Literal

import pytest

from xlalab.engine.settings import Params
from xlalab.errors import UserError
from xlalab.pipeline.contract import Paths, Project, built_projects
from xlalab.pipeline.params import Field
from xlalab.pipeline.runner import run_stage

ROOT = Path(__file__).resolve().parents[1]


class DownloadParams(Params):
    rows: int = Field(ge=1)
    fail: bool = False  # tests only: real projects take every value from params.yaml


class AnyParams(Params):
    mode: Literal["a", "b"] = "a"


def download(p: DownloadParams, paths: Paths) -> None:
    (paths.raw / "table.csv").write_text("x\n" + "1\n" * p.rows)
    if p.fail:
        raise UserError("the source went away half-way")


def nothing(p: Params, paths: Paths) -> None:
    pass


class Toy(Project):
    def function(self, stage):
        return download if stage.name == "download" else nothing


@pytest.fixture
def toy(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    return Toy(
        "toy",
        {
            "download": DownloadParams,
            **dict.fromkeys(("featurize", "train", "evaluate", "plot"), AnyParams),
        },
    )


def test_a_stage_writes_its_declared_output(toy, tmp_path):
    assert run_stage(toy, "download", {"toy": {"rows": 3}}) == [
        Paths.of("toy").raw,
        Paths.of("toy").cost("download"),
    ]
    assert (tmp_path / "data/toy/raw/table.csv").read_text().count("1") == 3


def test_a_failed_stage_leaves_the_previous_output_untouched(toy, tmp_path):
    run_stage(toy, "download", {"toy": {"rows": 2}})
    with pytest.raises(UserError, match="half-way"):
        run_stage(toy, "download", {"toy": {"rows": 5, "fail": True}})
    assert (tmp_path / "data/toy/raw/table.csv").read_text().count("1") == 2
    assert sorted(p.name for p in (tmp_path / "data/toy").iterdir()) == ["raw"]  # no temporary left


def test_a_failed_first_run_leaves_no_folder_behind(toy, tmp_path):
    (tmp_path / "data").mkdir()  # already there: stays
    with pytest.raises(UserError, match="half-way"):
        run_stage(toy, "download", {"toy": {"rows": 5, "fail": True}})
    assert list((tmp_path / "data").iterdir()) == []
    assert not (tmp_path / "metrics").exists()  # nor one for its cost file


def test_params_errors_name_the_key_and_what_is_allowed(toy):
    with pytest.raises(UserError, match=r"`toy.rows` must be greater than or equal to 1 \(got 0\)"):
        run_stage(toy, "download", {"toy": {"rows": 0}})
    with pytest.raises(UserError, match=r"`toy.rowz`, which no stage reads"):
        run_stage(toy, "download", {"toy": {"rows": 1, "rowz": 1}})
    with pytest.raises(UserError, match=r"missing `toy.rows`"):
        run_stage(toy, "download", {"toy": {}})
    with pytest.raises(UserError, match=r"`toy.rows` must be a valid integer"):
        run_stage(toy, "download", {"toy": {"rows": "3"}})  # strict: a string is not a number
    with pytest.raises(UserError, match=r"`toy.mode` must be 'a' or 'b' \(got 'c'\)"):
        run_stage(toy, "plot", {"toy": {"mode": "c"}})


def test_a_missing_input_names_the_stage_that_makes_it(toy):
    with pytest.raises(
        UserError,
        match=r"data/toy/raw is missing; run `dvc repro toy-download` \(or `python -m "
        r"xlalab.toy.download`\)",
    ):
        run_stage(toy, "featurize", {"toy": {}})


def test_a_project_must_declare_the_five_stages_in_order():
    with pytest.raises(ValueError, match="must declare the stages"):
        Project("bad", {"download": AnyParams})


def test_stage_code_lives_where_the_file_roles_say():
    project = Project(
        "p",
        dict.fromkeys(("download", "featurize", "train", "evaluate", "plot"), AnyParams),
        inputs={"plot": ("raw", "predictions")},
    )
    assert [s.module for s in project.stages] == [
        "xlalab.p.download",
        "xlalab.p.featurize",
        "xlalab.p.train",
        "xlalab.p.evaluate",
        "xlalab.p.plot",
    ]
    assert project.stage("plot").inputs == ("raw", "predictions")
    assert project.stage("evaluate").inputs == ("features", "model")
    assert project.stage("train").command == ["-m", "xlalab.p.train"]


def test_a_family_of_projects_shares_the_stages_after_download():
    stages = dict.fromkeys(("download", "featurize", "train", "evaluate", "plot"), AnyParams)
    project = Project("p", stages, shared="family")
    assert [s.module for s in project.stages] == [
        "xlalab.p.download",
        "xlalab.family.featurize",
        "xlalab.family.train",
        "xlalab.family.evaluate",
        "xlalab.family.plot",
    ]
    assert project.stage("train").command == ["-m", "xlalab.family.train", "p"]
    assert project.stage("download").command == ["-m", "xlalab.p.download"]


def test_every_stage_module_runs_its_own_function_from_its_main_block():
    """``python -m <module>`` is the stage: its __main__ block hands the function named like the
    stage, and this very project (none for a module several projects share: the command names
    the project), to the runner, with no lookup by name in between."""
    for project in built_projects():
        for stage in project.stages:
            path = ROOT / "src" / (stage.module.replace(".", "/") + ".py")
            tree = ast.parse(path.read_text())
            main_blocks = [
                n for n in tree.body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test)
            ]
            assert len(main_blocks) == 1, stage.module
            call = ast.unparse(main_blocks[0].body[0])
            module = importlib.import_module(stage.module)
            assert callable(getattr(module, stage.name))
            if stage.shared:
                assert call == f"runner.main({stage.name})", stage.module
            else:
                assert call == f"runner.main({stage.name}, PROJECT)", stage.module
                assert module.PROJECT is project


def test_every_param_has_its_default_in_params_yaml_alone():
    """No Params field of a project carries a default in code: params.yaml holds every value,
    once (the train configs' ``seed`` is no params.yaml key; it comes from the project's seed).
    test_pipeline checks that params.yaml passes every stage's check."""

    def fields(model: type[Params], where: str):
        for name, field in model.model_fields.items():
            yield f"{where}.{name}", field
            for kind in typing.get_args(field.annotation) or (field.annotation,):
                if isinstance(kind, type) and issubclass(kind, Params):
                    yield from fields(kind, f"{where}.{name}")

    for project in built_projects():
        for stage in project.stages:
            for key, field in fields(stage.params, project.name):
                if key.endswith(".seed") and key.count(".") > 1:
                    assert key.endswith("train.seed"), key
                    continue
                assert field.is_required(), f"{key} has a default in code; put it in params.yaml"


def test_the_cli_prints_one_line_and_exits_2(tmp_path, monkeypatch, capsys):
    from xlalab.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("runtime: [1, 2]\n")
    assert main(["cifar10", "download"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cifar10 download: ") and "\n" not in err


def test_the_xlalab_command_lists_every_subcommand():
    """`pip install -e .` gives the console script; its --help names every project and command."""
    script = Path(sys.executable).parent / "xlalab"
    assert script.exists(), "reinstall the package: pip install -e ."
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True).stdout
    from xlalab import PROJECTS
    from xlalab.cli import COMMANDS

    for name in (*PROJECTS, *COMMANDS):
        assert f"    {name} " in out, name
    summary_help = subprocess.run(
        [str(script), "summary", "--help"], capture_output=True, text=True
    )
    assert summary_help.returncode == 0 and "| project |" not in summary_help.stdout
