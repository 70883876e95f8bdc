"""The task seam: a task family is one module and one registry line (and the schema's enum).

A family carries its example builder, collator, evaluator and headline metrics, so no stage and
no review compares task names, and a family imports nothing from the stages that use it.
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from engine.tasks import TASKS

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("schema", ["schemas/spec.schema.json", "engine/schemas/spec.schema.json"])
def test_the_schemas_task_enum_is_the_task_registry(schema):
    task = json.loads((REPO / schema).read_text(encoding="utf-8"))["properties"]["task"]
    assert task["enum"] == list(TASKS)
    assert task["default"] in TASKS


def test_the_registry_names_each_family_by_its_own_name():
    assert all(family.name == name for name, family in TASKS.items())


@pytest.mark.parametrize("name", list(TASKS))
def test_a_family_carries_its_parts(name):
    family = TASKS[name]
    for part in (family.examples, family.describe_examples, family.collator, family.evaluator):
        assert callable(part)
    assert family.headline and set(family.headline) <= set(family.metrics)
    assert not set(family.reported) & set(family.metrics)  # kept besides the asked-for metrics, never instead


def _imported(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_no_family_imports_a_stage():
    wrong = {f"{path.name} imports {module}" for path in sorted((REPO / "engine" / "tasks").glob("*.py"))
             for module in _imported(path) if module == "engine.stages" or module.startswith("engine.stages.")}
    assert not wrong, wrong


def test_no_stage_and_no_review_names_a_task():
    """They ask the family (TASKS[spec's task]) instead of branching on its name."""
    sources = [*sorted((REPO / "engine" / "stages").glob("*.py")), REPO / "engine" / "review" / "metrics.py"]
    wrong = {f"{path.relative_to(REPO)} names {name!r}" for path in sources for name in TASKS
             if repr(name) in path.read_text(encoding="utf-8") or f'"{name}"' in path.read_text(encoding="utf-8")}
    assert not wrong, wrong
