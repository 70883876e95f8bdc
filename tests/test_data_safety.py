"""Malformed data is an error naming its file and line (or skipped when asked), a needed split is
never empty, a template cannot ask for gigabytes, and long texts are tokenized in bounded calls."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from engine.cli import main
from tiny import labelled_records, make_tiny_encoder, screenplay_records, write_jsonl

SPEC = """\
spec_version: 1
name: safety
seed: 7
model: {path: tiny-model}
data:
  source: {files: DATA}
  text: "# {title}\\n\\n{content}"
  split: {validation: 0.1, test: 0.1}
  max_length: 32
train: {max_steps: 2, batch_size: 4, precision: fp32}
runtime: {device: cpu}
"""


@pytest.fixture
def project(tmp_path, tiny_model):
    """A project dir holding a copy of the tiny model; `spec(data=..., extra=...)` writes spec.yaml."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(tiny_model, root / "tiny-model")
    os.chdir(root)
    return root


def write_spec(root: Path, files: str = "data.jsonl", extra: str = "", **replace: str) -> None:
    text = SPEC.replace("DATA", files) + extra
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    (root / "spec.yaml").write_text(text)


def run_data(capsys, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["run", "spec.yaml", "--until", "data", *args])
    return code, capsys.readouterr().err


def data_facts(root: Path) -> dict:
    return json.loads((root / "spec.lock.json").read_text())["nodes"]["data"]["facts"]


def csv_text(rows: list[str]) -> str:
    good = [f"Scene {i},the king and the queen {i}" for i in range(12)]
    return "\n".join(["title,content", *good[:3], *rows, *good[3:]]) + "\n"


# 1. CSV rows whose field count does not match the header


@pytest.mark.parametrize("row, message", [
    ("Scene x,the king, the queen", 'data.csv line 5: 3 fields, but the header has 2; quote a field that contains a comma ("like, this"), '
                                    "or set data.on_bad_rows: skip to leave such rows out"),
    ("Scene x", "data.csv line 5: 1 fields, but the header has 2 (title, content); give every column a value"),
])
def test_csv_row_with_wrong_field_count_names_file_and_line(project, capsys, row, message):
    (project / "data.csv").write_text(csv_text([row]))
    write_spec(project, "data.csv")
    code, err = run_data(capsys)
    assert code == 1 and message in err, err


def test_csv_with_quoted_comma_is_read_whole(project, capsys):
    (project / "data.csv").write_text(csv_text(['Scene x,"the king, the queen"']))
    write_spec(project, "data.csv")
    assert run_data(capsys)[0] == 0


# 2. NaN and infinity from JSON


def test_nan_label_names_file_and_record(project, capsys, tmp_path):
    make_tiny_encoder(project / "encoder")
    records = labelled_records(30)
    records[4]["genre"] = float("nan")
    (project / "data.json").write_text(json.dumps(records))  # json.dumps writes NaN, json.loads reads it
    write_spec(project, "data.json", **{"seed: 7\n": "seed: 7\ntask: sequence-classification\n", "tiny-model": "encoder",
                                        '"# {title}\\n\\n{content}"': '"{text}"\n  label: genre'})
    code, err = run_data(capsys)
    assert code == 1 and "data.json record 5: field 'genre' (the label data.label) is nan" in err, err


def test_infinity_in_a_text_field_is_not_text(project, capsys):
    records = screenplay_records(20)
    write_jsonl(project / "data.jsonl", records)
    with open(project / "data.jsonl", "a") as handle:
        handle.write('{"title": "Scene 20", "content": Infinity}\n')
    write_spec(project)
    code, err = run_data(capsys)
    assert code == 1 and "data.jsonl line 21: field 'content' (the template data.text) is inf" in err, err


# 3. data.on_bad_rows: skip


def test_skip_counts_logs_and_reports_bad_rows(project, capsys):
    (project / "data.csv").write_text(csv_text(["Scene x,the king, the queen", "Scene y"]))
    write_spec(project, "data.csv", **{"max_length: 32": "max_length: 32\n  on_bad_rows: skip"})
    code, err = run_data(capsys)
    assert code == 0, err
    facts = data_facts(project)
    assert facts["skipped_rows"] == 2
    assert facts["skipped_examples"] == ["data.csv line 5: 3 fields, but the header has 2",
                                         "data.csv line 6: 1 fields, but the header has 2 (title, content)"]
    assert "skipped 2 bad row(s) (data.on_bad_rows: skip): data.csv line 5" in err
    assert facts["train_texts"] + facts["validation_texts"] + facts["test_texts"] == 12
    # The policy is part of the data stage's key: going back to `error` is not a cache hit.
    write_spec(project, "data.csv")
    code, err = run_data(capsys)
    assert code == 1 and "data.csv line 5: 3 fields" in err, err


# 4. Empty splits that a stage needs


def split_files(root: Path, test_records: list[dict], validation_records: list[dict] | None = None) -> str:
    write_jsonl(root / "train.jsonl", screenplay_records(20))
    write_jsonl(root / "val.jsonl", screenplay_records(4, seed=1) if validation_records is None else validation_records)
    (root / "test.json").write_text(json.dumps(test_records))
    return "{train: train.jsonl, validation: val.jsonl, test: test.json}"


def test_empty_test_file_is_an_error_when_evaluated(project, capsys):
    write_spec(project, split_files(project, []), "evaluate: {split: test}\n")
    code, err = run_data(capsys)
    assert code == 1 and ("data.source.files.test: test.json has no records, and evaluate.split is test; add records to it, "
                          "or set evaluate.split to another split") in err, err


def test_empty_splits_nobody_reads_are_fine(project, capsys):
    write_spec(project, split_files(project, [], validation_records=[]))
    code, err = run_data(capsys)
    assert code == 0, err
    assert data_facts(project)["test_examples"] == 0 and data_facts(project)["validation_examples"] == 0


def test_empty_validation_file_is_an_error_with_eval_every(project, capsys):
    write_spec(project, split_files(project, screenplay_records(3, seed=2), validation_records=[]),
               **{"max_steps: 2": "max_steps: 2, eval_every: 1"})
    code, err = run_data(capsys)
    assert code == 1 and "data.source.files.validation: val.jsonl has no records, and train.eval_every evaluates on it" in err, err


def test_fraction_that_rounds_to_zero(project, capsys):
    write_jsonl(project / "data.jsonl", screenplay_records(2))
    write_spec(project, extra="evaluate: {split: test}\n")
    code, err = run_data(capsys)
    assert code == 1 and ("data.split.test 0.1 of 2 records is 0, and evaluate.split is test; raise it to at least 0.26, "
                          "add records, or set evaluate.split to another split") in err, err


def test_zero_fraction_with_early_stopping(project, capsys):
    write_jsonl(project / "data.jsonl", screenplay_records(20))
    write_spec(project, **{"max_steps: 2": "max_steps: 2, eval_every: 1, early_stopping: {patience: 1}",
                           "validation: 0.1": "validation: 0"})
    code, err = run_data(capsys)
    assert code == 1 and ("data.split.validation is 0, and train.early_stopping evaluates on it; set data.split.validation "
                          "above 0 (e.g. 0.1), or remove train.early_stopping") in err, err


def test_fractions_that_leave_no_training_data(project, capsys):
    write_jsonl(project / "data.jsonl", screenplay_records(2))
    write_spec(project, **{"validation: 0.1, test: 0.1": "validation: 0.5, test: 0.5"})
    code, err = run_data(capsys)
    assert code == 1 and "data.split.validation 0.5 and data.split.test 0.5 of 2 records leave none for training" in err, err


def test_split_of_blank_texts_has_no_examples(project, capsys):
    blank = [{"title": "", "content": "  "}] * 3
    write_spec(project, split_files(project, blank), "evaluate: {split: test}\n", **{'"# {title}\\n\\n{content}"': '"{title}{content}"'})
    code, err = run_data(capsys)
    assert code == 1 and "the test split has no examples: its 3 text(s) are blank or shorter than 2 tokens" in err, err


# 5. Template widths


def test_huge_template_width_is_a_located_spec_problem(project, capsys):
    write_jsonl(project / "data.jsonl", screenplay_records(20))
    write_spec(project, **{'"# {title}\\n\\n{content}"': '"{title:>9999999999}\\n{content}"'})
    capsys.readouterr()
    assert main(["run", "spec.yaml", "--until", "data"]) == 2
    err = capsys.readouterr().err
    assert ("spec.yaml:7:9  $.data.text  placeholder {title:>9999999999} asks for a width or precision of 9999999999; "
            "at most 1000 is allowed") in err, err
    assert main(["validate", "spec.yaml", "--set", 'data.text="{title:>1000.3}"']) == 0


# 6. Bounded tokenization


def test_long_text_is_tokenized_in_bounded_calls_with_the_same_blocks(project, capsys, tmp_path, monkeypatch):
    from datasets import load_from_disk
    from transformers import AutoTokenizer, PreTrainedTokenizerBase

    from engine.dataprep import tokens

    words = "the king queen ship sea storm night love fool crown sword moon".split()
    text = " ".join(words[(i * 7) % len(words)] for i in range(120_000))  # ~600,000 characters on one line
    write_jsonl(project / "data.jsonl", [{"title": "Long", "content": text}])
    write_spec(project, **{"validation: 0.1, test: 0.1": "validation: 0, test: 0"})
    sizes: list[int] = []
    call = PreTrainedTokenizerBase.__call__

    def counting(self, text, *args, **kwargs):
        sizes.append(sum(map(len, text)) if isinstance(text, list) else len(text))
        return call(self, text, *args, **kwargs)

    monkeypatch.setattr(PreTrainedTokenizerBase, "__call__", counting)
    code, err = run_data(capsys)
    assert code == 0, err
    assert max(sizes) <= tokens.BATCH_CHARS + tokens.PIECE_CHARS < len(text)
    monkeypatch.undo()
    tokenizer = AutoTokenizer.from_pretrained(project / "tiny-model")
    flat = tokenizer("# Long\n\n" + text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    expected = [flat[i:i + 32] for i in range(0, len(flat), 32)]
    key = json.loads((project / "spec.lock.json").read_text())["nodes"]["data"]["key"]
    stored = load_from_disk(str(tmp_path / "store" / "store" / key[:2] / key / "out" / "dataset"))
    assert stored["train"]["input_ids"] == [block for block in expected if len(block) > 1]
