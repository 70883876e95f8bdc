"""Bad specs: every problem at once, located, with golden text; never a traceback."""
from __future__ import annotations

import json

import pytest

from engine.cli import main

from conftest import MINIMAL
from projects import errors_of


CASES = {
    "typo-key": (MINIMAL + "train:\n  learning_rat: 1e-4\n",
                 ["spec.yaml:8:3  $.train.learning_rat  unknown key (did you mean learning_rate?)"]),
    "misplaced-key": (MINIMAL + "learning_rate: 1e-4\n",
                      ["spec.yaml:7:1  $.learning_rate  unknown key (learning_rate belongs under train)"]),
    "wrong-type": (MINIMAL + "train:\n  epochs: three\n",
                   ["spec.yaml:8:11  $.train.epochs  must be a number (got a string 'three')"]),
    "out-of-range": (MINIMAL + "train:\n  learning_rate: -1\n",
                     ["spec.yaml:8:18  $.train.learning_rate  must be > 0 (got -1)"]),
    "split-fraction": (MINIMAL.replace("  source: {files: data.txt}\n", "  source: {files: data.txt}\n  split: {test: 1.0}\n"),
                       ["spec.yaml:7:17  $.data.split.test  must be < 1 (got 1.0)"]),
    "bad-enum": (MINIMAL + "train:\n  scheduler: cosin\n",
                 ["spec.yaml:8:14  $.train.scheduler  must be one of: 'linear', 'cosine', 'constant', 'constant_with_warmup' (got 'cosin') (did you mean cosine?)"]),
    "two-sources": (MINIMAL.replace("  builtin: smollm2-135m\n", "  builtin: smollm2-135m\n  path: ./model\n"),
                    ["spec.yaml:4:3  $.model  give exactly one of hub, path, gguf, builtin, config, from (found path and builtin); they are mutually exclusive"]),
    "no-source": (MINIMAL.replace("  builtin: smollm2-135m\n", "  dtype: float32\n"),
                  ["spec.yaml:4:3  $.model  give one of hub, path, gguf, builtin, config, from"]),
    "hub-without-revision": (MINIMAL.replace("  builtin: smollm2-135m\n", "  hub: org/model\n"),
                             ["spec.yaml:4:3  $.model.hub  'hub' needs 'revision' beside it: Commit sha, tag or branch of the `hub` model"]),
    "duplicate-key": (MINIMAL + "seed: 1\nseed: 2\n",
                      ["spec.yaml:8:1  $.seed  duplicate key 'seed' (first defined at line 7)"]),
    "python-tag": (MINIMAL + "x-evil: !!python/object/apply:os.system ['touch pwned']\n",
                   ["spec.yaml:7:9  explicit YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed in a spec; remove it"]),
    "syntax": ("spec_version: 1\nname: [unclosed\nmodel: {}\n",
               ["spec.yaml:3:6  YAML syntax error: while parsing a flow sequence expected ',' or ']', but got ':'"]),
    "missing-required": ("spec_version: 1\nmodel:\n  builtin: smollm2-135m\n",
                         ["spec.yaml:1:1  $  missing required key 'name': Name of the experiment record: lower-case letters, digits and dashes",
                          "spec.yaml:1:1  $  missing required key 'data': Where the text comes from and how it becomes training examples"]),
    "bad-name": (MINIMAL.replace("name: tiny", "name: My Experiment"),
                 ["spec.yaml:2:7  $.name  must be lower-case letters, digits and dashes, starting with a letter or digit (got 'My Experiment')"]),
    "unknown-version": (MINIMAL.replace("spec_version: 1", "spec_version: 2"),
                        ["spec.yaml:1:15  $.spec_version  unsupported spec_version 2: this engine reads spec_version 1"]),
    "not-a-mapping": ("- just\n- a list\n", ["spec.yaml:1:1  $  the document must be a mapping of keys to values"]),
    "empty": ("", ["spec.yaml:1:1  the file is empty; a spec is a YAML mapping"]),
    "bad-files-type": (MINIMAL.replace("{files: data.txt}", "{files: 3}"),
                       ["spec.yaml:6:19  $.data.source.files  must be a string or a list of strings or a mapping (got 3)"]),
    "empty-prompts": (MINIMAL + "generate:\n  prompts: []\n",
                      ["spec.yaml:8:12  $.generate.prompts  must have at least 1 item(s)"]),
    "nan": (MINIMAL + "train:\n  learning_rate: .nan\n",
            ["spec.yaml:8:18  $.train.learning_rate  '.nan' is not a finite number"]),
    "merge-key": (MINIMAL + "base: &b {epochs: 1}\ntrain:\n  <<: *b\n",
                  ["spec.yaml:9:3  $.train  YAML merge keys (<<) are not supported; use `extends`"]),
    "unknown-nested-under-lora": (MINIMAL.replace("  builtin: smollm2-135m\n", "  builtin: smollm2-135m\n  lora: {rank: 8}\n"),
                                  ["spec.yaml:5:10  $.model.lora.rank  unknown key; allowed keys: alpha, dropout, r, target_modules"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_spec_golden(case, write, capsys):
    text, expected = CASES[case]
    path = write("spec.yaml", text)
    assert errors_of(capsys, path) == expected


def test_all_problems_reported_at_once(write, capsys):
    path = write("spec.yaml", MINIMAL + "train:\n  learning_rat: 1\n  epochs: -1\ngenerate:\n  temperature: 2\n")
    lines = errors_of(capsys, path)
    assert len(lines) == 3
    assert [line.split()[0] for line in lines] == ["spec.yaml:8:3", "spec.yaml:9:11", "spec.yaml:10:1"]


def test_tag_never_constructs(write, capsys, tmp_path):
    path = write("spec.yaml", MINIMAL + f"x-evil: !!python/object/apply:os.system ['touch {tmp_path}/pwned']\n")
    errors_of(capsys, path)
    assert not (tmp_path / "pwned").exists()


def test_alias_bomb_refused(write, capsys):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i-1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    path = write("spec.yaml", MINIMAL + "x-bomb:\n" + "\n".join("  " + l for l in lines) + "\n")
    out = errors_of(capsys, path)
    assert len(out) == 1 and "after expanding aliases" in out[0]


def test_size_cap(write, capsys):
    path = write("spec.yaml", MINIMAL + "description: '" + "x" * (1 << 20) + "'\n")
    assert "a spec may be at most 1,048,576" in errors_of(capsys, path)[0]


def test_non_utf8(tmp_path, capsys):
    path = tmp_path / "spec.yaml"
    path.write_bytes(MINIMAL.encode() + b"description: caf\xe9\n")
    assert errors_of(capsys, path) == ["spec.yaml:7:17  not UTF-8 text (byte 0xe9); save the file as UTF-8"]


def test_missing_file(capsys):
    assert errors_of(capsys, "nope.yaml") == ["nope.yaml  file not found"]


def test_extends_cycle(write, capsys):
    write("a.yaml", "extends: b.yaml\n" + MINIMAL)
    write("b.yaml", "extends: a.yaml\nseed: 3\n")
    assert errors_of(capsys, "a.yaml") == ["b.yaml:1:10  $.extends  extends cycle: a.yaml -> b.yaml -> a.yaml; remove one of these `extends`"]


def test_error_in_base_points_at_base(write, capsys):
    write("base.yaml", MINIMAL + "train:\n  epochz: 2\n")
    write("child.yaml", "extends: base.yaml\nseed: 7\n")
    assert errors_of(capsys, "child.yaml") == ["base.yaml:8:3  $.train.epochz  unknown key (did you mean epochs?)"]


@pytest.mark.parametrize("override, expected", [
    ("train.learning_rat=1e-4", "--set train.learning_rat=1e-4  $.train.learning_rat  no such key in the spec (did you mean learning_rate?)"),
    ("trian.epochs=1", "--set trian.epochs=1  $.trian  no such key in the spec (did you mean train?)"),
    ("train.epochs", "--set train.epochs  expected --set dotted.path=value, e.g. --set train.learning_rate=1e-4"),
    ("train.epochs=[1", "--set train.epochs=[1  YAML syntax error: while parsing a flow sequence expected ',' or ']', but got '<stream end>'"),
    ("train.epochs=-2", "--set train.epochs=-2  $.train.epochs  must be > 0 (got -2)"),
])
def test_bad_set(override, expected, write, capsys):
    path = write("spec.yaml", MINIMAL)
    assert errors_of(capsys, path, "--set", override) == [expected]


def test_verbose_shows_traceback(write, capsys):
    path = write("spec.yaml", MINIMAL + "train: {epochs: 0}\n")
    assert main(["-v", "validate", str(path)]) == 2
    assert "Traceback" in capsys.readouterr().err


# A base's model source, switched in an override: `null` deletes the inherited key (RFC 7386)

BASE = MINIMAL.replace("  builtin: smollm2-135m\n", "  builtin: smollm2-135m\n  lora: {r: 4}\n")


def test_extends_cannot_add_a_second_model_source(write, capsys):
    write("base.yaml", BASE)
    write("hub.yaml", "extends: base.yaml\nmodel: {hub: org/name, revision: main}\n")
    assert errors_of(capsys, "hub.yaml") == [
        "hub.yaml:2:8  $.model  give exactly one of hub, path, gguf, builtin, config, from (found hub and builtin); "
        "they are mutually exclusive (builtin comes from base.yaml: `builtin: null` drops it)"]


def test_null_in_an_extending_spec_deletes_the_inherited_key(write, capsys):
    write("base.yaml", BASE)
    write("data.txt", "Some text.\n")
    write("hub.yaml", "extends: base.yaml\nmodel: {builtin: null, hub: org/name, revision: main}\n")
    assert main(["validate", "hub.yaml", "--json"]) == 0
    model = json.loads(capsys.readouterr().out)["hub.yaml"]["model"]
    assert "builtin" not in model and model["hub"] == "org/name" and model["lora"]["r"] == 4  # mappings still merge


def test_null_in_a_set_deletes_the_key(write, capsys):
    write("base.yaml", BASE)
    write("data.txt", "Some text.\n")
    assert errors_of(capsys, "base.yaml", "--set", "model.hub=org/name", "--set", "model.revision=main") == [
        "base.yaml:4:3  $.model  give exactly one of hub, path, gguf, builtin, config, from (found hub and builtin); "
        "they are mutually exclusive (builtin comes from base.yaml: --set model.builtin=null drops it)"]
    assert main(["validate", "base.yaml", "--json", "--set", "model.builtin=null", "--set", "model.hub=org/name",
                 "--set", "model.revision=main", "--set", "evaluate.split=null"]) == 0
    resolved = json.loads(capsys.readouterr().out)["base.yaml"]
    assert "builtin" not in resolved["model"] and resolved["model"]["hub"] == "org/name"
    assert "evaluate" not in resolved  # deleting an absent key creates no section on the way


@pytest.mark.parametrize("child, expected", [
    ("model: {builtin: null}\n", "spec.yaml:2:8  $.model  give one of hub, path, gguf, builtin, config, from"),
    ("model: {buitin: null}\n", "spec.yaml:2:9  $.model.buitin  unknown key (did you mean builtin?)"),
])
def test_null_left_in_the_merged_spec_is_reported(child, expected, write, capsys):
    write("base.yaml", MINIMAL)
    write("spec.yaml", "extends: base.yaml\n" + child)
    assert errors_of(capsys, "spec.yaml") == [expected]


def test_null_in_a_spec_without_a_base_is_a_type_error(write, capsys):
    path = write("spec.yaml", MINIMAL.replace("  builtin: smollm2-135m\n", "  builtin: null\n  hub: org/name\n  revision: main\n"))
    assert "spec.yaml:4:12  $.model.builtin  must be a string (got null)" in errors_of(capsys, path)
