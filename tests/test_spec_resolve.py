"""The resolved spec: defaults, extends, --set, and what does not change it."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from engine.cli import main
from engine.spec import load_spec
from engine.spec.reference import markdown_reference

from conftest import MINIMAL, REPO


def test_defaults_are_filled(write):
    spec = load_spec(write("s.yaml", MINIMAL))
    assert spec.get("seed") == 42
    assert spec.get("train.learning_rate") == 5e-05
    assert spec.get("data.split.test") == 0.05
    assert spec.get("data.source.txt_unit") == "block"
    assert not spec.has("evaluate") and not spec.has("generate")


def test_resolved_spec_is_read_only(write):
    spec = load_spec(write("s.yaml", MINIMAL))
    with pytest.raises(TypeError):
        spec.tree["seed"] = 1  # type: ignore[index]


def test_formatting_does_not_change_resolved_spec(write):
    a = load_spec(write("a.yaml", MINIMAL + "train:\n  learning_rate: 5e-5\n  epochs: 2\n"))
    b = load_spec(write("b.yaml", """\
        # a comment
        data:
          source: {"files": 'data.txt'}   # quoted differently
        train: {epochs: 2.0, learning_rate: 0.00005}
        model: {builtin: "smollm2-135m"}
        name: tiny
        spec_version: 1
        """))
    assert json.dumps(a.tree, sort_keys=True) == json.dumps(b.tree, sort_keys=True)


def test_yaml_12_numbers(write):
    spec = load_spec(write("s.yaml", MINIMAL + "train: {learning_rate: 1e-4}\n"))
    assert spec.get("train.learning_rate") == pytest.approx(1e-4)
    assert isinstance(spec.get("train.learning_rate"), float)


def test_extends_deep_merges(write):
    write("base.yaml", MINIMAL + "train: {epochs: 2, batch_size: 8}\ngenerate: {prompts: [a, b]}\n")
    child = write("child.yaml", "extends: base.yaml\nname: child\ntrain: {epochs: 5}\ngenerate: {prompts: [c]}\n")
    spec = load_spec(child)
    assert spec.name == "child"
    assert spec.get("train.epochs") == 5 and spec.get("train.batch_size") == 8  # mappings merge
    assert spec.get("generate.prompts") == ("c",)  # lists replace
    assert "extends" not in spec.tree


def test_extends_chain(write):
    write("a.yaml", MINIMAL + "seed: 1\n")
    write("b.yaml", "extends: a.yaml\nseed: 2\ntrain: {epochs: 9}\n")
    spec = load_spec(write("c.yaml", "extends: b.yaml\nseed: 3\n"))
    assert (spec.get("seed"), spec.get("train.epochs")) == (3, 9)


def test_set_parses_yaml_values(write):
    spec = load_spec(write("s.yaml", MINIMAL), ["train.learning_rate=1e-4", "generate.prompts=[hi]", "x-note=true"])
    assert spec.get("train.learning_rate") == pytest.approx(1e-4)
    assert spec.get("generate.prompts") == ("hi",)
    assert spec.get("x-note") is True


def test_set_on_validate_command(write, capsys):
    path = write("s.yaml", MINIMAL)
    write("data.txt", "Some text.\n")
    assert main(["validate", str(path), "--set", "seed=7", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[str(path)]["seed"] == 7


def test_package_schema_matches_repository_schema():
    assert (REPO / "schemas/spec.schema.json").read_bytes() == (REPO / "engine/schemas/spec.schema.json").read_bytes()


def test_reference_doc_is_in_sync():
    assert (REPO / "docs/spec-reference.md").read_text(encoding="utf-8") == markdown_reference(), \
        "docs/spec-reference.md is stale: run `engine schema --markdown > docs/spec-reference.md`"


def test_every_schema_property_is_documented():
    from engine.spec import schema as s

    def walk(node, path):
        for name, sub in s.properties_at(node).items():
            assert s.deref(sub).get("description"), f"{path}{name} has no description"
            walk(sub, f"{path}{name}.")

    walk(s.schema(), "")


@pytest.mark.parametrize("spec", sorted(p.name for p in (REPO / "specs").glob("*.yaml")))
def test_example_specs_validate(spec):
    text = (REPO / "specs" / spec).read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=../schemas/spec.schema.json")
    assert main(["validate", str(REPO / "specs" / spec)]) == 0


def test_schema_command_prints_schema(capsys):
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["$schema"].endswith("2020-12/schema")


LIGHT_CHECK = """
import sys
from engine.cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in ("torch", "transformers", "datasets", "accelerate", "peft") if m in sys.modules)
print("HEAVY:" + ",".join(heavy))
"""


@pytest.mark.parametrize("argv", [["validate", "specs/quickstart.yaml"], ["schema"], ["schema", "--markdown"]])
def test_light_commands_never_import_heavy_libraries(argv):
    out = subprocess.run([sys.executable, "-c", LIGHT_CHECK, *argv], cwd=REPO, capture_output=True, text=True)
    assert "HEAVY:\n" in out.stdout, out.stdout + out.stderr
