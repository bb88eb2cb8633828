"""The project contract: params parsed once with one-line errors, inputs checked, and outputs that
appear only when a stage succeeds."""
from __future__ import annotations

from typing import Literal

import pytest

from xlalab.core.errors import UserError
from xlalab.core.params import Field, Params
from xlalab.core.project import Paths, Project, run_stage


class DownloadParams(Params):
    rows: int = Field(ge=1)
    fail: bool = False


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
    return Toy("toy", {"download": DownloadParams, **dict.fromkeys(("featurize", "train", "evaluate", "plot"),
                                                                    AnyParams)})


def test_a_stage_writes_its_declared_output(toy, tmp_path):
    assert run_stage(toy, "download", {"toy": {"rows": 3}}) == [Paths.of("toy").raw]
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
    with pytest.raises(UserError, match=r"data/toy/raw is missing; run `python -m xlalab toy download`"):
        run_stage(toy, "featurize", {"toy": {}})


def test_a_project_must_declare_the_five_stages_in_order():
    with pytest.raises(ValueError, match="must declare the stages"):
        Project("bad", {"download": AnyParams})


def test_stage_code_lives_where_the_file_roles_say():
    project = Project("p", dict.fromkeys(("download", "featurize", "train", "evaluate", "plot"), AnyParams),
                      family="xlalab.fam", inputs={"plot": ("raw", "predictions")})
    assert [s.module for s in project.stages] == ["xlalab.p.data", "xlalab.fam.features", "xlalab.fam.train",
                                                   "xlalab.fam.evaluate", "xlalab.fam.figures"]
    assert project.stage("plot").inputs == ("raw", "predictions")
    assert project.stage("evaluate").inputs == ("features", "model")


def test_the_cli_prints_one_line_and_exits_2(tmp_path, monkeypatch, capsys):
    from xlalab.__main__ import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("runtime: [1, 2]\n")
    assert main(["cifar10", "download"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cifar10 download: ") and "\n" not in err
