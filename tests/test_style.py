"""Habits the tree keeps: functions short enough to read in one screen."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
LONGEST = 60  # lines of a function, as formatted by ruff


def test_no_function_in_src_is_longer_than_60_lines():
    long = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > LONGEST:
                    long.append(
                        f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({lines} lines)"
                    )
    assert not long, "split these functions:\n" + "\n".join(long)


def test_the_readme_is_short_with_the_map_near_the_top_and_each_project_in_docs():
    root = SRC.parent
    lines = (root / "README.md").read_text().splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; move details to docs/"
    assert "## Map of the code" in lines[:100]
    from xlalab import PROJECTS

    for project in PROJECTS:
        page = root / "docs" / f"{project}.md"
        assert page.exists() and f"(docs/{project}.md)" in "\n".join(lines), project
