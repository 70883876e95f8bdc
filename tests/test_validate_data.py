"""`engine validate` checks the data files a spec names: they exist, and their first record has the
fields the templates use; located like any spec problem, exit 2, and nothing heavy imported."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from engine.cli import main

from conftest import REPO
from projects import errors_of

SPEC = """\
spec_version: 1
name: tiny
model: {builtin: smollm2-135m}
data:
  source: {files: %s}
  text: "# {title}\\n\\n{content}"
"""


@pytest.fixture
def records(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "scenes.jsonl").write_text("\n" + json.dumps({"title": "A", "content": "b"}) + "\n")
    (tmp_path / "data" / "scenes.csv").write_text("title,content\nA,b\n")
    return tmp_path


def test_data_files_that_exist_and_fit_validate(records, write, capsys):
    write("spec.yaml", SPEC % "[data/scenes.jsonl, data/*.csv]")
    assert main(["validate", "spec.yaml"]) == 0
    assert capsys.readouterr().out == "ok  spec.yaml  (tiny)\n"


def test_missing_files_are_located_problems(records, write, capsys, tmp_path):
    write("spec.yaml", SPEC % "[data/scenes.jsonl, data/scene.jsonl, data/*.parquet]")
    assert errors_of(capsys, "spec.yaml") == [
        f"spec.yaml:5:19  $.data.source.files  data file not found: data/scene.jsonl (looked in {tmp_path})",
        f"spec.yaml:5:19  $.data.source.files  no file matches data/*.parquet (looked in {tmp_path})"]


def test_template_fields_missing_from_the_first_record(records, write, capsys):
    write("spec.yaml", (SPEC % "{train: data/scenes.jsonl, test: data/scenes.csv}").replace("{content}", "{body}")
          + "  split: {by: play}\n")
    assert errors_of(capsys, "spec.yaml") == [
        "spec.yaml:6:9  $.data.text  data/scenes.jsonl line 2: no field 'body' for the template data.text (fields: content, title)",
        "spec.yaml:6:9  $.data.text  data/scenes.csv line 2: no field 'body' for the template data.text (fields: content, title)",
        "spec.yaml:7:15  $.data.split.by  data/scenes.jsonl line 2: no field 'play' for data.split.by (fields: content, title)",
        "spec.yaml:7:15  $.data.split.by  data/scenes.csv line 2: no field 'play' for data.split.by (fields: content, title)"]


def test_prompt_and_completion_fields_and_a_default_template(records, write, capsys):
    spec = (SPEC % "data/scenes.jsonl").replace('  text: "# {title}\\n\\n{content}"\n',
                                                '  prompt: "{title}"\n  completion: "{answer}"\n')
    write("spec.yaml", spec)
    assert errors_of(capsys, "spec.yaml") == [
        "spec.yaml:7:15  $.data.completion  data/scenes.jsonl line 2: no field 'answer' for the template data.completion "
        "(fields: content, title)"]
    write("plain.yaml", (SPEC % "data/scenes.jsonl").replace('  text: "# {title}\\n\\n{content}"\n', ""))
    assert errors_of(capsys, "plain.yaml") == [  # the default data.text is `{text}`: located at data
        "plain.yaml:5:3  $.data.text  data/scenes.jsonl line 2: no field 'text' for the template data.text (fields: content, title)"]


def test_a_bad_first_row_follows_data_on_bad_rows(records, write, capsys):
    (records / "data" / "scenes.jsonl").write_text('{"title": "A", \n' + json.dumps({"title": "A", "content": "b"}) + "\n")
    write("spec.yaml", SPEC % "data/scenes.jsonl")
    [problem] = errors_of(capsys, "spec.yaml")
    assert problem.startswith("spec.yaml:5:19  $.data.source.files  data/scenes.jsonl line 1: not valid JSON")
    assert problem.endswith("; fix the line, or set data.on_bad_rows: skip to leave such rows out")
    assert main(["validate", "spec.yaml", "--set", "data.on_bad_rows=skip"]) == 0  # the next record is the first


def test_a_sweep_variant_template_points_at_its_value_in_the_sweep(records, write, capsys):
    write("spec.yaml", SPEC % "data/scenes.jsonl" + 'sweep:\n  grid: {data.text: ["{title}", "{body}"]}\n')
    assert errors_of(capsys, "spec.yaml") == [
        "spec.yaml:8:33  $.data.text  data/scenes.jsonl line 2: no field 'body' for the template data.text (fields: content, title)"]


def test_a_file_outside_the_project_is_not_read(tmp_path, write, capsys):
    (tmp_path / "outside.jsonl").write_text(json.dumps({"title": "A"}) + "\n")
    (tmp_path / "project" / ".git").mkdir(parents=True)
    write("project/spec.yaml", SPEC % "../outside.jsonl")
    [problem] = errors_of(capsys, "project/spec.yaml")
    assert problem.startswith("project/spec.yaml:5:19  $.data.source.files  ../outside.jsonl is outside the project")


LIGHT = """
import sys
from engine.cli import main
code = main(["validate", "spec.yaml"])
print("CODE", code, "HEAVY", sorted(m for m in ("torch", "transformers", "datasets", "accelerate", "peft") if m in sys.modules))
"""


def test_validate_reads_data_files_without_heavy_imports(records, write):
    write("spec.yaml", SPEC.replace("{content}", "{body}") % "[data/scenes.jsonl, data/scenes.csv]")
    out = subprocess.run([sys.executable, "-c", LIGHT], cwd=records, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert "CODE 2 HEAVY []" in out.stdout, out.stdout + out.stderr
    assert "no field 'body'" in out.stderr
