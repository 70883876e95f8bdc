"""Checks used per sample (score_each), `generate.select` (best of N by a check) and the checks on
held-out real items (`metrics.reference`): units, then one tiny model end to end."""
from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

from engine.checks import abc_notation, distinct, levels, play_format
from engine.checks.scoring import known_metrics, run_all, score_each
from engine.cli import main
from tiny import spec_text

SCENE = "**VIOLA**\nWhat country, friends, is this?\n**CAPTAIN**\nThis is Illyria, lady.\n"
PROSE = "It was a dark and stormy night, and the rain fell in torrents.\n"
FLAT = "\n".join(["X-------------"] * 12)  # 12 columns of ground


def row(completion: str, prompt: str = "", index: int = 0) -> dict:
    return {"prompt_index": 0, "sample": index, "prompt": prompt, "completion": completion,
            "completion_ids": [ord(c) for c in completion]}


# -- score_each: one implementation, each sample alone ---------------------------------------------

def test_score_each_is_each_checks_run_on_one_sample():
    samples = [row(SCENE, index=0), row(PROSE, index=1), row("a a a a b", index=2)]
    scores = score_each(["play-format", "distinct-n"], [dict(s) for s in samples], context=None)
    assert [s["play_format_rate"] for s in scores] == [1.0, 0.0, 0.0]  # a rate over one sample: 1 or 0
    for sample, score in zip(samples, scores):
        alone = {**play_format.run([dict(sample)], None), **distinct.run([dict(sample)], None)}
        assert score == alone
    assert scores[2]["distinct_1"] == pytest.approx(3 / 9)  # "a", " ", "b" of 9 characters
    together = run_all(["play-format"], [dict(s) for s in samples], None)
    assert together["play_format_rate"] == pytest.approx(1 / 3)


def test_score_each_annotates_the_samples_as_run_does():
    sample = row(FLAT)
    score_each(["level"], [sample], None)
    assert {k: sample["level"][k] for k in ("well_formed", "playable", "columns", "novel_valid")} == \
        {"well_formed": True, "playable": True, "columns": 12, "novel_valid": True}
    assert sample["level"]["judge"] in ("agent", "rules (the agent ran past its time limit)") or \
        sample["level"]["judge"].startswith("rules (no Java")


def test_declared_metric_names_are_what_the_checks_report():
    for name, module, sample in (("distinct-n", distinct, row(PROSE)), ("level", levels, row(FLAT)),
                                 ("play-format", play_format, row(SCENE))):
        reported = set(module.run([sample], None))
        assert reported == set(module.METRICS) - {"play_novel_valid_rate"}, name  # that one needs the copy index
    assert known_metrics(["level", "distinct-n"]) == {"level_well_formed_rate", "level_playable_rate", "level_novel_valid_rate",
                                                      "level_completion", "level_identity",
                                                      "distinct_1", "distinct_2", "distinct_3"}
    assert known_metrics(["abc"]) == set(abc_notation.METRICS)  # abc_follows_rate only with record prompts


# -- selection -------------------------------------------------------------------------------------

def test_choose_keeps_the_best_and_on_a_tie_the_earlier(monkeypatch):
    from engine.checks import CHECKS
    from engine.checks.selection import choose

    values = {"a": 0.5, "b": 0.9, "c": 0.5, "d": 0.1}
    monkeypatch.setitem(CHECKS, "fake", types.SimpleNamespace(run=lambda samples, context: {
        "quality": sum(values[s["completion"]] for s in samples) / len(samples)}))
    rows = [row(text, index=i) for i, text in enumerate("abcd")]
    kept, candidates = choose(rows, 3, {"by": "quality", "mode": "max"}, ["fake"], None, lambda line: None)
    assert [(k["completion"], k["sample"], k["candidate"]) for k in kept] == [("b", 0, 1), ("a", 1, 0), ("c", 2, 2)]
    assert [(c["candidate"], c["kept"], c["sample"], c["scores"]["quality"]) for c in candidates] == [
        (0, True, 1, 0.5), (1, True, 0, 0.9), (2, True, 2, 0.5), (3, False, None, 0.1)]
    kept, _ = choose(rows, 1, {"by": "quality", "mode": "min"}, ["fake"], None, lambda line: None)
    assert [k["completion"] for k in kept] == ["d"]


def test_a_metric_only_running_tells_is_a_stage_error(monkeypatch):
    from engine.checks import CHECKS
    from engine.checks.selection import choose
    from engine.errors import StageError

    monkeypatch.setitem(CHECKS, "fake", types.SimpleNamespace(run=lambda samples, context: {"quality": 1.0}))
    with pytest.raises(StageError, match=r"generate.select.by: 'qualty' is not a metric the checks fake report .*"
                                         r"they report quality"):
        choose([row("a")], 1, {"by": "qualty", "mode": "max"}, ["fake"], None, print)


SELECTING = spec_text("  path: tiny-model").replace(
    "  temperature: 0.9", "  temperature: 0.9\n  checks: [distinct-n, play-format]\n"
                          "  select: {candidates: 4, by: distinct_1}")


@pytest.mark.parametrize("change, where, message", [
    ("by: distinct_9", "$.generate.select.by",
     "'distinct_9' is not a metric of generate.checks (distinct-n, play-format) (did you mean distinct_3?); "
     "they report: distinct_1, distinct_2, distinct_3, play_format_rate, play_lines_per_turn"),
    ("candidates: 1", "$.generate.select.candidates", "1 candidates cannot give the 2 samples per prompt kept"),
])
def test_a_bad_select_is_a_located_error(scenes_project, capsys, change, where, message):
    field = change.split(":")[0]
    spec = SELECTING.replace("select: {candidates: 4, by: distinct_1}",
                             "select:\n    candidates: 4\n    by: distinct_1\n").replace(f"    {field}: ", f"    {change}  # ", 1)
    path = scenes_project / "spec.yaml"
    path.write_text(spec)
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if text.startswith(f"    {field}:"))
    for command in ("validate", "plan"):
        assert main([command, "spec.yaml"]) == 2
        err = capsys.readouterr().err
        assert f"spec.yaml:{line}:" in err and where in err and message in err, err


def test_select_needs_checks(scenes_project, capsys):
    (scenes_project / "spec.yaml").write_text(SELECTING.replace("  checks: [distinct-n, play-format]\n", ""))
    assert main(["validate", "spec.yaml"]) == 2
    assert "$.generate.select  needs generate.checks to score the candidates with" in capsys.readouterr().err


# -- reference items -------------------------------------------------------------------------------

def test_held_out_texts_are_read_back_whole_and_instruction_items_split_at_the_answer():
    from datasets import Dataset

    from engine.checks.reference import IGNORE, documents

    eos = 0
    packed = Dataset.from_dict({"input_ids": [[5, 6, 7, eos, 8], [9, eos, 3]]})
    assert documents(packed, eos) == [([5, 6, 7, eos], None), ([8, 9, eos], None), ([3], None)]
    instructions = Dataset.from_dict({"input_ids": [[1, 2, 3, eos, 4, 5, eos], [6, 7, 8]],
                                      "labels": [[IGNORE, 2, 3, eos, IGNORE, 5, eos], [IGNORE, IGNORE, 8]]})
    assert documents(instructions, eos) == [([1, 2, 3, eos], [IGNORE, 2, 3, eos]), ([4, 5, eos], [IGNORE, 5, eos]),
                                            ([6, 7, 8], [IGNORE, IGNORE, 8])]  # an example never crosses a block


def test_an_instruction_item_is_its_prompt_and_its_answer(tiny_model, tmp_path):
    from datasets import Dataset, DatasetDict
    from transformers import AutoTokenizer

    from engine.checks.reference import IGNORE, held_out_items

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    eos = tokenizer.eos_token_id
    examples = []
    for prompt, answer in (("the king", " sea storm"), ("the queen", " moon song"), ("the fool", " ")):
        asked, answered = tokenizer(prompt)["input_ids"], tokenizer(answer)["input_ids"] + [eos]
        examples.append((asked + answered, [IGNORE] * len(asked) + answered))
    split = {"input_ids": [ids for ids, _ in examples], "labels": [labels for _, labels in examples]}
    DatasetDict({"validation": Dataset.from_dict(split)}).save_to_disk(str(tmp_path / "dataset"))
    name, rows = held_out_items(tmp_path, tokenizer, 32, seed=0)
    assert name == "validation"  # no test split: the validation split
    assert [(r["prompt"], r["completion"]) for r in rows] == [("the king", " sea storm"), ("the queen", " moon song")]
    assert rows[0]["completion_ids"] == tokenizer(" sea storm")["input_ids"]  # a blank answer is no item


# -- end to end ------------------------------------------------------------------------------------

def _outputs(tmp_path: Path, key: str) -> Path:
    return tmp_path / "store" / "store" / key[:2] / key / "out"


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _assert_best_kept(candidates: list[dict], keep: int) -> None:
    for prompt in {c["prompt_index"] for c in candidates}:
        mine = [c for c in candidates if c["prompt_index"] == prompt]
        ranked = sorted(mine, key=lambda c: (-c["scores"]["distinct_1"], c["candidate"]))
        assert [(c["candidate"], c["sample"]) for c in ranked[:keep]] == [(c["candidate"], i) for i, c in enumerate(ranked[:keep])]
        assert all(c["kept"] for c in ranked[:keep]) and not any(c["kept"] for c in ranked[keep:])


def test_select_keeps_the_best_of_n_and_the_record_has_the_checks_on_real_items(scenes_project, tmp_path, capsys):
    (scenes_project / "spec.yaml").write_text(SELECTING)
    assert main(["run", "spec.yaml"]) == 0
    node = json.loads((scenes_project / "spec.lock.json").read_text())["nodes"]["generate"]
    out = _outputs(tmp_path, node["key"])
    candidates, samples = _jsonl(out / "candidates.jsonl"), _jsonl(out / "samples.jsonl")
    assert len(candidates) == 8 and len(samples) == 4  # 2 prompts x 4 candidates, 2 kept of each
    _assert_best_kept(candidates, 2)
    by_number = {(c["prompt_index"], c["candidate"]): c for c in candidates}
    for sample in samples:
        chosen = by_number[(sample["prompt_index"], sample["candidate"])]
        assert chosen["kept"] and chosen["sample"] == sample["sample"] and chosen["completion"] == sample["completion"]
        assert chosen["scores"]["distinct_1"] == distinct.distinct_n([sample["completion_ids"]], 1)  # judged alone
    metrics = node["metrics"]
    assert metrics["distinct_1"] == distinct.run(samples, None)["distinct_1"]  # the kept samples' metrics
    assert set(metrics["reference"]) == set(metrics) - {"samples", "reference"}
    assert node["facts"]["reference"] == {"split": "test", "items": 4}  # 10% of 40 records; fewer than 32
    real = _jsonl(out / "reference.jsonl")
    assert len(real) == 4 and all(r["prompt"] == "" and r["completion"].startswith("# Scene") for r in real)
    assert metrics["reference"]["play_format_rate"] == 0.0  # the scenes are not in the play format

    capsys.readouterr()
    assert main(["show", "spec.yaml"]) == 0
    shown = capsys.readouterr().out
    assert "base -> fine-tuned -> real" in shown and "distinct_2" in shown
    assert main(["report", "spec.yaml", "-o", "report.html"]) == 0
    page = (scenes_project / "report.html").read_text()
    assert "2 rejected candidates (fine-tuned, candidates.jsonl)" in page and "held-out items" in page

    (scenes_project / "spec.yaml").write_text(SELECTING.replace("candidates: 4", "candidates: 5"))
    capsys.readouterr()
    assert main(["run", "spec.yaml", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ran"] == ["generate"]
    again = json.loads((scenes_project / "spec.lock.json").read_text())["nodes"]["generate"]
    candidates = _jsonl(_outputs(tmp_path, again["key"]) / "candidates.jsonl")
    assert len(candidates) == 10
    _assert_best_kept(candidates, 2)
