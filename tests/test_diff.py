"""`engine diff` and `engine compare` on a temporary git repository."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO
from engine.cli import main
from projects import BUILTIN_SPEC, git

@pytest.fixture
def repo(tmp_path):
    """Three commits of one spec: formatting only, a learning-rate change, a generation change."""
    root = tmp_path / "repo"
    (root / "specs").mkdir(parents=True)
    spec = root / "specs" / "x.yaml"
    (root / "specs" / "data.txt").write_text("# ACT I\n\nSCENE I.\n")
    git(root, "init", "-q")
    spec.write_text(BUILTIN_SPEC)
    git(root, "add", ".")
    git(root, "commit", "-qm", "first")
    spec.write_text("# reformatted, same meaning\n" + BUILTIN_SPEC.replace("5.0e-5", "0.00005").replace('["# ACT I"]', "\n    - '# ACT I'"))
    git(root, "commit", "-qam", "format")
    spec.write_text(spec.read_text().replace("0.00005", "1e-4"))
    git(root, "commit", "-qam", "lr")
    spec.write_text(spec.read_text().replace("temperature: 0.8", "temperature: 0.5"))
    git(root, "commit", "-qam", "temperature")
    os.chdir(root)
    return root


def diff_json(capsys, *args) -> dict:
    capsys.readouterr()
    assert main(["diff", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_formatting_only_commit_is_no_change(repo, capsys):
    out = diff_json(capsys, "HEAD~3:specs/x.yaml", "HEAD~2:specs/x.yaml")
    assert out["changes"] == [] and out["cached"] == ["model", "data", "train", "generate"]


def test_learning_rate_commit_reruns_train_and_after(repo, capsys):
    out = diff_json(capsys, "HEAD~2:specs/x.yaml", "HEAD~1:specs/x.yaml")
    assert out["changes"] == [{"field": "train.learning_rate", "old": 5e-05, "new": 0.0001,
                               "reruns": ["train", "generate"]}]
    assert out["cached"] == ["model", "data"]


def test_generation_commit_reruns_generate_only(repo, capsys):
    out = diff_json(capsys, "HEAD~1:specs/x.yaml", "HEAD:specs/x.yaml")
    assert out["changes"] == [{"field": "generate.temperature", "old": 0.8, "new": 0.5, "reruns": ["generate"]}]


def test_evaluate_reruns_with_train_when_present(repo, capsys):
    (repo / "specs" / "x.yaml").write_text(BUILTIN_SPEC.replace("5.0e-5", "1e-3") + "evaluate: {}\n")
    (repo / "specs" / "old.yaml").write_text(BUILTIN_SPEC + "evaluate: {}\n")
    out = diff_json(capsys, "specs/old.yaml", "specs/x.yaml")
    assert out["changes"][0]["reruns"] == ["train", "evaluate", "generate"]


def test_one_argument_forms(repo, capsys):
    (repo / "specs" / "x.yaml").write_text(BUILTIN_SPEC)  # working tree back to the first version
    out = diff_json(capsys, "specs/x.yaml")  # HEAD vs working tree
    assert {c["field"] for c in out["changes"]} == {"train.learning_rate", "generate.temperature"}
    out = diff_json(capsys, "HEAD~3:specs/x.yaml")  # a revision vs working tree
    assert out["changes"] == []


def test_prompt_added_and_description_reruns_nothing(repo, capsys):
    (repo / "specs" / "x.yaml").write_text(BUILTIN_SPEC.replace('["# ACT I"]', '["# ACT I", "# ACT II"]') + "description: hi\nruntime: {device: cpu}\n")
    out = diff_json(capsys, "HEAD~3:specs/x.yaml", "specs/x.yaml")
    by_field = {c["field"]: c for c in out["changes"]}
    assert by_field["generate.prompts[1]"] == {"field": "generate.prompts[1]", "old": None, "new": "# ACT II", "reruns": ["generate"]}
    assert by_field["description"]["reruns"] == [] and by_field["runtime.device"]["reruns"] == []


def test_set_applies_to_side_b(repo, capsys):
    out = diff_json(capsys, "HEAD:specs/x.yaml", "specs/x.yaml", "--set", "seed=3")
    assert out["changes"][0]["field"] == "seed"
    assert out["changes"][0]["reruns"] == ["data", "train", "generate"]


def test_markdown_renders_a_table(repo, capsys):
    capsys.readouterr()
    assert main(["diff", "HEAD~2:specs/x.yaml", "HEAD~1:specs/x.yaml", "--markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "| field | before | after | reruns |" in lines and "|---|---|---|---|" in lines
    assert "| `train.learning_rate` | `5e-05` | `0.0001` | train, generate |" in lines


def test_exit_code_flag(repo):
    assert main(["diff", "HEAD~3:specs/x.yaml", "HEAD~2:specs/x.yaml", "--exit-code"]) == 0
    assert main(["diff", "HEAD~2:specs/x.yaml", "HEAD~1:specs/x.yaml", "--exit-code"]) == 1


def test_metrics_side_by_side_from_records(repo, capsys):
    record = {"spec": "scenes", "engine": "0", "seed": 42, "nodes": {"generate": {"key": "k", "metrics": {"samples": 3.0}}}}
    (repo / "specs" / "x.lock.json").write_text(json.dumps(record))
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "record")
    record["nodes"]["generate"]["metrics"]["samples"] = 2.5
    (repo / "specs" / "x.lock.json").write_text(json.dumps(record))
    out = diff_json(capsys, "HEAD:specs/x.yaml", "specs/x.yaml")
    # the numbers, each with whether its stage is the current result of its side (key "k" is not)
    assert out["metrics"] == {"generate.samples": {"a": 3.0, "a_state": "out of date", "b": 2.5, "b_state": "out of date"}}


def test_rev_path_is_read_as_git_reads_it_from_a_subfolder(repo, capsys):
    """`REV:path` is relative to the repository's top folder, `REV:./path` to the current one."""
    os.chdir(repo / "specs")
    for args in (["HEAD~2:specs/x.yaml", "HEAD~1:specs/x.yaml"], ["HEAD~2:./x.yaml", "HEAD~1:../specs/x.yaml"]):
        out = diff_json(capsys, *args)
        assert [c["field"] for c in out["changes"]] == ["train.learning_rate"], args
    (repo / "specs" / "x.yaml").write_text(BUILTIN_SPEC)  # the working tree back to the first version
    for args in (["HEAD~3:specs/x.yaml"], ["HEAD~3:./x.yaml"], ["HEAD~3:specs/x.yaml", "x.yaml"]):
        assert diff_json(capsys, *args)["changes"] == [], args  # a revision vs the working tree
    assert {c["field"] for c in diff_json(capsys, "x.yaml")["changes"]} == {"train.learning_rate", "generate.temperature"}
    assert main(["diff", "HEAD:x.yaml"]) == 2
    assert ("HEAD:x.yaml: x.yaml does not exist in revision HEAD (the path after REV: is relative to the repository's "
            "top folder, as in git; HEAD:./x.yaml is relative to this folder)") in capsys.readouterr().err
    assert main(["compare", "x.yaml", "--rev", "HEAD~3", "--json"]) == 0
    assert [r["run"] for r in json.loads(capsys.readouterr().out)] == ["HEAD~3:specs/x.yaml", "x.yaml"]


@pytest.mark.parametrize("args, message", [
    (["nope:specs/x.yaml"], "unknown git revision 'nope'"),
    (["HEAD:specs/missing.yaml"], "specs/missing.yaml does not exist in revision HEAD"),
    (["specs/x.yaml", "specs/missing.yaml"], "specs/missing.yaml  file not found"),
])
def test_bad_input(repo, capsys, args, message):
    assert main(["diff", *args]) == 2
    assert message in capsys.readouterr().err


def test_invalid_side_is_named(repo, capsys):
    (repo / "specs" / "x.yaml").write_text(BUILTIN_SPEC.replace("learning_rate", "learning_rat"))
    assert main(["diff", "HEAD:specs/x.yaml", "specs/x.yaml"]) == 2
    err = capsys.readouterr().err
    assert "side B (specs/x.yaml) does not load" in err and "did you mean learning_rate?" in err


def test_git_external_diff_driver(repo):
    """git diff, with the driver configured as the README says, shows resolved changes."""
    (repo / ".gitattributes").write_text("specs/*.yaml diff=engine\n")
    git(repo, "config", "diff.engine.command", f"{sys.executable} -m engine diff --git-driver")
    out = subprocess.run(["git", "diff", "HEAD~2", "HEAD~1", "--", "specs/x.yaml"], cwd=repo, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert "train.learning_rate" in out.stdout and "train, generate" in out.stdout
    assert "input files and records were not compared: git's diff driver does not say which revision" in " ".join(out.stdout.split())


def test_compare_runs(repo, capsys):
    (repo / "specs" / "y.yaml").write_text(BUILTIN_SPEC.replace("5.0e-5", "3e-4"))
    capsys.readouterr()
    assert main(["compare", "specs/x.yaml", "specs/y.yaml", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["train.learning_rate"] for r in rows] == ["0.0001", "0.0003"]
    assert main(["compare", "specs/x.yaml", "--rev", "HEAD~3", "--rev", "HEAD~1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["run"] for r in rows] == ["HEAD~3:specs/x.yaml", "HEAD~1:specs/x.yaml", "specs/x.yaml"]


def test_diff_imports_no_heavy_library(repo):
    code = ("import sys; from engine.cli import main; main(['diff', 'HEAD~1:specs/x.yaml', 'specs/x.yaml']);"
            "print('HEAVY', [m for m in ('torch', 'transformers', 'datasets') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True)
    assert "HEAVY []" in out.stdout, out.stderr
