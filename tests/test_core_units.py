"""Core against a fake registry and a fake pipeline: no stage module, no global patched."""
from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from engine.core.canonical import canonical_json, sha256_of
from engine.core.digests import DigestCache
from engine.core.graph import Bind, NodeTemplate, resolve
from engine.core.plan import RUN, make_plan
from engine.core.runner import Event, run_plan
from engine.core.stage import StageKind
from engine.core.store import Store
from engine.spec import Spec, freeze


def kind(reads=("a",), ignores=None, fail=False, version=1):
    def run(ctx):
        if fail:
            raise RuntimeError("boom")
        (ctx.out / "roles.json").write_text(json.dumps(sorted(ctx.inputs)))
        return {"metrics": {"n": len(ctx.inputs)}}

    return types.SimpleNamespace(VERSION=version, LIBRARIES=(), reads=lambda spec: reads, IGNORES=ignores or {},
                                 ROLES=("up", "extra"), PRODUCES=("roles.json",), inputs=lambda spec: {}, run=run)


def spec(tree: dict, root: Path) -> Spec:
    return Spec(root / "s.yaml", freeze({"name": "unit", "seed": 1, **tree}))


PIPELINE = (
    NodeTemplate("source", "source"),
    NodeTemplate("left", "left", inputs={"up": "source"}),
    NodeTemplate("right", "right", inputs={"up": "source", "extra": Bind("left", lambda s: s.get("b.wire", False))}),
    NodeTemplate("right[alone]", "right", when=lambda s: s.get("b.alone", False), inputs={"up": "source"}),
)


class Recorder:
    def __init__(self):
        self.events: list[tuple[str, str]] = []

    def event(self, event: Event) -> None:
        if event.kind != "log":
            self.events.append((event.kind, event.node))

    def progress(self, node, total, description):
        return types.SimpleNamespace(advance=lambda *a, **k: None, close=lambda: None)


@pytest.fixture
def registry():
    return {"source": kind(("a",)), "left": kind(("b.x", "b.log"), {"b.log": "logging cadence only"}),
            "right": kind(("b.x",))}


def test_canonical_json_is_one_text_per_value():
    assert canonical_json({"b": 1.0, "a": [2, "é"]}) == '{"a":[2,"é"],"b":1}'
    assert sha256_of({"x": 1}) == sha256_of({"x": 1.0})
    with pytest.raises(ValueError):
        sha256_of({"x": float("nan")})
    with pytest.raises(TypeError):
        sha256_of({"x": object()})


def test_the_registry_satisfies_the_stage_contract(registry):
    from engine.pipeline import default_registry

    assert all(isinstance(k, StageKind) for k in registry.values())
    assert all(isinstance(k, StageKind) for k in default_registry().values())


def test_resolver_binds_roles_and_conditions(registry, tmp_path):
    graph = resolve(spec({"a": 1, "b": {"x": 2}}, tmp_path), registry, PIPELINE)
    assert graph.order == ("source", "left", "right")
    assert dict(graph.nodes["right"].inputs) == {"up": "source"}  # the conditional binding is off
    wired = resolve(spec({"a": 1, "b": {"x": 2, "wire": True, "alone": True}}, tmp_path), registry, PIPELINE)
    assert dict(wired.nodes["right"].inputs) == {"up": "source", "extra": "left"}
    assert set(wired.order) == {"source", "left", "right", "right[alone]"}


def test_an_ignored_field_stays_out_of_the_key(registry, tmp_path):
    store, digests = Store(tmp_path / "store"), DigestCache(tmp_path / "d.sqlite")
    keys = []
    for log in (1, 50):
        graph = resolve(spec({"a": 1, "b": {"x": 2, "log": log}}, tmp_path), registry, PIPELINE)
        assert "log" not in graph.nodes["left"].params["b"]
        keys.append({s.node.name: s.key for s in make_plan(graph, store, digests, None)})
    assert keys[0] == keys[1]


def test_node_names_never_enter_a_key(registry, tmp_path):
    store, digests = Store(tmp_path / "store"), DigestCache(tmp_path / "d.sqlite")
    tree = {"a": 1, "b": {"x": 2, "alone": True}}
    steps = {s.node.name: s for s in make_plan(resolve(spec(tree, tmp_path), registry, PIPELINE), store, digests, None)}
    assert steps["right"].key == steps["right[alone]"].key  # same kind, same params, same upstream by role


def test_runner_events_and_failure_isolation(registry, tmp_path):
    registry = {**registry, "left": kind(("b.x",), fail=True)}
    graph = resolve(spec({"a": 1, "b": {"x": 2}}, tmp_path), registry, PIPELINE)
    store, digests = Store(tmp_path / "store"), DigestCache(tmp_path / "d.sqlite")
    steps = make_plan(graph, store, digests, None)
    assert [s.action for s in steps] == [RUN] * 3
    reporter = Recorder()
    result = run_plan(graph, steps, store, digests, reporter)
    assert reporter.events == [("started", "source"), ("done", "source"), ("started", "left"), ("failed", "left"),
                               ("started", "right"), ("done", "right")]
    assert result.failed == ["left"] and result.ran == ["source", "right"]
    roles = json.loads((result.entries["right"].out / "roles.json").read_text())
    assert roles == ["up"]


def test_every_task_of_the_schema_has_a_family():
    from engine.spec.schema import schema
    from engine.tasks import TASKS

    assert set(schema()["properties"]["task"]["enum"]) == set(TASKS)


def test_binding_a_role_the_stage_does_not_have_is_an_error(registry, tmp_path):
    from engine.errors import EngineError

    bad = PIPELINE + (NodeTemplate("odd", "left", inputs={"weights": "source"}),)
    with pytest.raises(EngineError, match="stage kind 'left' has no input role weights"):
        resolve(spec({"a": 1, "b": {"x": 2}}, tmp_path), registry, bad)
