"""The shape a newcomer sees from `ls src/xlalab`: three shared layers and one package per project.

- ``engine/``: the training loop and its two backends. It imports nothing from the other layers,
  so it can be read (and reused) alone.
- ``pipeline/``: the project contract, typed params, the stage runner and dvc.yaml. It may use the
  engine (to start processes, to fit and save), never the results tools.
- ``results/``: verdicts, reports and figures that evaluate and plot stages use, and the commands
  that read every project's outputs (summary, results page, seeds, real-data profiles). Projects
  use the first kind only.

``xlalab/errors.py``, ``xlalab/files.py`` and ``xlalab/numbers.py`` sit below all three. These
tests read import statements (function-level ones included), so a lazy import cannot hide a wrong
direction.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "xlalab"
LAYERS = ("engine", "pipeline", "results")
# The results modules that read across projects: commands, not something a stage computes with.
RESULTS_COMMANDS = {"summary", "page", "seeds", "profiles", "offline_plots", "costs"}
MOST_MODULES = 12
LONGEST_FILE = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """The xlalab modules a file imports, as absolute dotted names."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return {m for m in found if m == "xlalab" or m.startswith("xlalab.")}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("layer", LAYERS)
def test_each_layer_imports_only_the_layers_below_it(layer):
    below = {"engine": set(), "pipeline": {"engine"}, "results": {"engine", "pipeline"}}[layer]
    wrong = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for module in imported_modules(path):
            other = layer_of(module)
            if other in LAYERS and other != layer and other not in below:
                wrong.append(f"{path.relative_to(SRC)} imports {module}")
    assert not wrong, "\n".join(wrong)


def test_projects_use_the_results_layer_only_for_verdicts_reports_and_figures():
    wrong = []
    for path in sources():
        if layer_of(module_name(path)) in (*LAYERS, None) or path.parent == PACKAGE:
            continue
        for module in imported_modules(path):
            parts = module.split(".")
            if parts[1:2] == ["results"] and len(parts) > 2 and parts[2] in RESULTS_COMMANDS:
                wrong.append(f"{path.relative_to(SRC)} imports {module}")
    assert not wrong, "\n".join(wrong)


def test_projects_never_import_torch_xla_or_accelerate():
    wrong = []
    for path in sources():
        if layer_of(module_name(path)) in LAYERS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            wrong += [f"{path.relative_to(SRC)}: {n}" for n in names if n.split(".")[0] in
                      ("torch_xla", "accelerate")]  # fmt: skip
    assert not wrong, "\n".join(wrong)


def test_no_package_holds_more_than_12_modules_and_no_file_more_than_400_lines():
    crowded = {
        str(folder.relative_to(SRC)): count
        for folder in [PACKAGE, *[p for p in PACKAGE.rglob("*") if p.is_dir()]]
        if (count := len([f for f in folder.glob("*.py") if f.name != "__init__.py"]))
        > MOST_MODULES
    }
    assert not crowded, f"split these packages: {crowded}"
    long = {
        str(path.relative_to(SRC)): n
        for path in sources()
        if (n := len(path.read_text().splitlines())) > LONGEST_FILE
    }
    assert not long, f"split these files: {long}"


def test_no_module_only_re_exports_another():
    """A module whose body is imports alone (past its docstring) only forwards names: callers
    should import from where the code lives."""
    forwarding = []
    for path in sources():
        body = ast.parse(path.read_text()).body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]
        code = [n for n in body if not isinstance(n, ast.Import | ast.ImportFrom)]
        if body and not code:
            forwarding.append(str(path.relative_to(SRC)))
    assert not forwarding, f"modules that only import: {forwarding}"


def test_no_params_class_is_built_at_run_time():
    """Every params section and stage Params is a class in the source (go-to-definition and the
    type checker see it), never made by pydantic's create_model: the name appears nowhere in
    the source (cifar10's networks come from timm's builders, not its factory of that name)."""
    built = [str(path.relative_to(SRC)) for path in sources() if "create_model" in path.read_text()]
    assert not built, built


def test_stage_functions_name_their_params_in_words():
    """The function a stage module runs takes ``(params, paths)`` with a declared Params class,
    not ``p``: the reader starts here."""
    from xlalab.pipeline.contract import built_projects

    wrong = []
    for project in built_projects():
        for stage in project.stages:
            path = SRC.joinpath(*stage.module.split(".")).with_suffix(".py")
            tree = ast.parse(path.read_text())
            function = next(
                n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == stage.name
            )
            args = [a.arg for a in function.args.args]
            if args[:2] != ["params", "paths"] or function.args.args[0].annotation is None:
                wrong.append(f"{stage.module}.{stage.name}({', '.join(args)})")
    assert not wrong, sorted(set(wrong))
