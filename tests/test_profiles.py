"""The real-data profiles: every override names a real param and passes its stage's checks, and
the command they become is a named DVC experiment of that project alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from xlalab.errors import UserError
from xlalab.pipeline.contract import built_projects
from xlalab.pipeline.params import load_params
from xlalab.results import profiles

ROOT = Path(__file__).resolve().parents[1]
PROFILE = profiles.load_profile(ROOT / "profiles/real.yaml")


def test_every_built_project_has_a_real_data_profile():
    assert sorted(PROFILE) == sorted(p.name for p in built_projects())


@pytest.mark.parametrize("project", sorted(PROFILE))
def test_every_override_names_a_real_param_and_passes_its_checks(project):
    overrides = PROFILE[project]
    assert all(key.split(".")[0] in (project, "runtime") for key in overrides), (
        "a profile changes its project only"
    )
    profiles.check(project, overrides, load_params(ROOT / "params.yaml"))


def test_an_override_of_a_param_that_does_not_exist_is_refused():
    params = load_params(ROOT / "params.yaml")
    with pytest.raises(UserError, match="`imdb.train.epochz` names no param"):
        profiles.check("imdb", {"imdb.train.epochz": 3}, params)
    with pytest.raises(
        UserError, match=r"`cifar10.train.image_size` must be less than or equal to 512"
    ):
        profiles.check("cifar10", {"cifar10.train.image_size": 1024}, params)


def test_the_command_is_a_named_experiment_of_that_project_with_extra_overrides_last():
    overrides = {
        **PROFILE["imdb"],
        **profiles.parse_sets(
            ["imdb.download.path=/data/IMDB Dataset.csv", "imdb.download.source=kaggle"]
        ),
    }
    argv = profiles.command("imdb", overrides)
    assert argv[:5] == ["dvc", "exp", "run", "-n", "real-imdb"] and argv[-1] == "imdb-plot"
    sets = [argv[i + 1] for i, a in enumerate(argv) if a == "-S"]
    assert "imdb.download.source=kaggle" in sets and "imdb.download.source=huggingface" not in sets
    assert (
        "imdb.download.path=/data/IMDB Dataset.csv" in sets
        and "imdb.featurize.max_train=null" in sets
    )
