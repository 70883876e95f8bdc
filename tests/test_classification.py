"""Sequence classification end to end on a tiny encoder, through `engine run`."""
from __future__ import annotations

import json
import os
import shutil

import pytest

from engine.cli import main
from tiny import labelled_records, make_tiny_encoder, write_jsonl

SPEC = """\
spec_version: 1
name: genre
seed: 3
task: sequence-classification
model: {path: encoder}
data:
  source: {files: data.jsonl}
  text: "{text}"
  label: genre
  split: {validation: 0.2, test: 0.2, by: play}
  max_length: 32
train: {epochs: 3, batch_size: 8, learning_rate: 3.0e-3, precision: fp32, log_every: 5}
evaluate: {split: test}
runtime: {device: cpu}
"""


@pytest.fixture(scope="session")
def encoder(tmp_path_factory):
    return make_tiny_encoder(tmp_path_factory.mktemp("enc") / "encoder")


@pytest.fixture
def project(tmp_path, encoder):
    root = tmp_path / "p"
    root.mkdir()
    shutil.copytree(encoder, root / "encoder")  # inside the project: a spec reads only its project
    write_jsonl(root / "data.jsonl", labelled_records())
    (root / "spec.yaml").write_text(SPEC)
    os.chdir(root)
    return root


def test_classifier_metrics_are_consistent_and_cached(project, tmp_path, capsys):
    assert main(["run", "spec.yaml"]) == 0
    record = json.loads((project / "spec.lock.json").read_text())
    metrics = record["nodes"]["evaluate"]["metrics"]
    matrix = metrics["confusion_matrix"]["rows_true_columns_predicted"]
    total = sum(map(sum, matrix))
    assert total == metrics["examples"]
    assert metrics["accuracy"] == pytest.approx(sum(matrix[i][i] for i in range(len(matrix))) / total)
    assert set(metrics["per_class"]) == {"comedy", "history", "tragedy"}
    assert 0 <= metrics["macro_f1"] <= 1 and "majority_accuracy" in metrics
    assert record["nodes"]["data"]["facts"]["labels"] == ["comedy", "history", "tragedy"]
    key = record["nodes"]["train"]["key"]
    config = json.loads((tmp_path / "store" / "store" / key[:2] / key / "out" / "model" / "config.json").read_text())
    assert config["id2label"] == {"0": "comedy", "1": "history", "2": "tragedy"}
    assert "the classification head is new: 3 classes" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["run", "spec.yaml", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ran"] == []
    assert main(["plan", "spec.yaml", "--json", "--set", "data.packing=false"]) == 0  # a classifier never packs
    assert {s["action"] for s in json.loads(capsys.readouterr().out)} == {"cached"}


def test_group_split_keeps_each_play_in_one_split(project):
    from engine.spec import load_spec
    from engine.stages.data import load_splits

    spec = load_spec("spec.yaml")
    splits = load_splits(dict(spec.get("data")), 3, project)
    by_text = {r["text"]: r["play"] for r in labelled_records()}
    plays = {split: {by_text[t] for t in cols["text"]} for split, cols in splits.items()}
    assert not (plays["train"] & plays["test"]) and not (plays["train"] & plays["validation"])
    assert len(plays["test"]) == 3  # 20% of 15 plays


def test_missing_label_names_the_record(project, capsys):
    records = labelled_records()
    del records[4]["genre"]
    write_jsonl(project / "data.jsonl", records)
    assert main(["run", "spec.yaml"]) == 1
    assert "data.jsonl line 5: no field 'genre' for the label data.label (fields: play, text)" in capsys.readouterr().err


def test_class_missing_from_train_is_an_error(project, capsys):
    records = labelled_records()
    for r in records:  # one genre only in one play, which the split puts in test or validation
        if r["genre"] == "tragedy":
            r["play"] = "lonely-play"
    write_jsonl(project / "data.jsonl", records)
    code = main(["run", "spec.yaml", "--until", "data", "--set", "data.split.test=0.5"])
    err = capsys.readouterr().err
    assert code == 1 and "that the train split lacks" in err, err


def test_generate_is_refused_for_classification(project, capsys):
    assert main(["validate", "spec.yaml", "--set", "generate={prompts: [x]}"]) == 2
    assert "$.generate  does not apply to task sequence-classification; remove it" in capsys.readouterr().err
