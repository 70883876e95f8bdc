"""sweep.search: trials as sweep variants, the study kept in the store and continued, never a trial
trained twice; through the CLI with fake stages (a loss that differs per trial: FAKE_LOSS)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.cli import main
from projects import ran, write_sweep

SEARCH = """
evaluate: {split: test}
sweep:
  search:
    method: random
    trials: 4
    space:
      train.learning_rate: {low: 1.0e-5, high: 1.0e-2, log: true}
      train.batch_size: [2, 4, 8]
  metric: evaluate.loss
"""


@pytest.fixture
def search(project, monkeypatch):
    monkeypatch.setenv("FAKE_LOSS", "1")
    return project


def plan(capsys, spec: str) -> tuple[dict, str]:
    capsys.readouterr()
    assert main(["plan", spec, "--json"]) == 0
    steps = {s["stage"]: s for s in json.loads(capsys.readouterr().out)}
    assert main(["plan", spec]) == 0
    return steps, capsys.readouterr().out


def study_file(project) -> dict:
    """The study in the store (the autouse fixture's ENGINE_STORE)."""
    return study_file_at(Path(os.environ["ENGINE_STORE"]))


def test_a_random_search_plans_its_trials_over_one_data_node_and_a_rerun_trains_nothing(search, capsys, fakes):
    spec = write_sweep(search, SEARCH)
    steps, text = plan(capsys, spec)
    trains = [n for n in steps if n.startswith("train")]
    assert trains == ["train[trial-1]", "train[trial-2]", "train[trial-3]", "train[trial-4]"]
    assert [n for n in steps if n.startswith("data")] == ["data"] and "model" in steps
    assert "search (random): 0 of 4 trials done; chosen now: trial-1, trial-2, trial-3, trial-4" in text
    assert main(["run", spec]) == 0
    assert sorted(n for n in ran(fakes) if n.startswith("train")) == trains
    assert "4 of 4 trials done" in capsys.readouterr().err

    record = json.loads((search / "specs" / "s.lock.json").read_text())
    done = record["sweep"]["search"]["done"]
    assert [t["name"] for t in done] == ["trial-1", "trial-2", "trial-3", "trial-4"]
    assert {t["state"] for t in done} == {"complete"}
    for trial, variant in zip(done, record["sweep"]["variants"]):
        assert trial["params"] == variant["set"] and 1e-5 <= trial["params"]["train.learning_rate"] <= 1e-2
        assert trial["params"]["train.batch_size"] in (2, 4, 8)
        assert trial["value"] == record["nodes"][variant["nodes"]["evaluate"]]["metrics"]["loss"]
    assert len({t["params"]["train.learning_rate"] for t in done}) == 4
    kept = study_file(search)["trials"]
    assert [(t["name"], t["params"], t["value"]) for t in kept] == [(t["name"], t["params"], t["value"]) for t in done]

    assert main(["run", spec]) == 0
    assert ran(fakes) == []  # a rerun: every trial is done and cached
    capsys.readouterr()
    assert main(["compare", spec, "--json"]) == 0
    ranked = json.loads(capsys.readouterr().out)["variants"]
    assert [r["value"] for r in ranked] == sorted(t["value"] for t in done)


def test_the_trials_are_seeded_and_raising_trials_continues_the_study(search, capsys, fakes):
    spec = write_sweep(search, SEARCH.replace("trials: 4", "trials: 2"))
    assert main(["run", spec]) == 0
    first = json.loads((search / "specs" / "s.lock.json").read_text())["sweep"]["search"]["done"]
    ran(fakes)
    spec = write_sweep(search, SEARCH)  # 4 trials: the same study, two more
    steps, text = plan(capsys, spec)
    assert "search (random): 2 of 4 trials done; chosen now: trial-3, trial-4" in text
    assert {n for n, s in steps.items() if s["action"] == "run"} == {f"{stage}[trial-{n}]" for n in (3, 4)
                                                                     for stage in ("train", "evaluate", "generate")}
    assert main(["run", spec]) == 0
    assert sorted(n for n in ran(fakes) if n.startswith("train")) == ["train[trial-3]", "train[trial-4]"]
    again = json.loads((search / "specs" / "s.lock.json").read_text())["sweep"]["search"]["done"]
    assert again[:2] == first
    # another seed is another study, with other values
    path = search / spec
    path.write_text(path.read_text().replace("seed: 1", "seed: 2"))
    steps, text = plan(capsys, spec)
    assert "0 of 4 trials done" in text


TPE = SEARCH.replace("method: random", "method: tpe\n    startup: 2")


def test_a_tpe_search_stopped_after_two_trials_continues_at_trial_three(search, capsys, fakes, tmp_path, monkeypatch):
    spec = write_sweep(search, TPE)
    steps, text = plan(capsys, spec)
    assert "chosen now: trial-1, trial-2; 2 more will be chosen from the results" in text
    assert [n for n in steps if n.startswith("train")] == ["train[trial-1]", "train[trial-2]"]

    from engine.app import searching

    real, calls = searching.Progress.more, []

    def stop_after_the_first_round(self):  # as an interrupted run: the study holds trials 1 and 2
        calls.append(self.done)
        return False

    monkeypatch.setattr(searching.Progress, "more", property(stop_after_the_first_round))
    assert main(["run", spec]) == 0
    assert calls == [2] and len(study_file(search)["trials"]) == 2
    monkeypatch.setattr(searching.Progress, "more", real)
    ran(fakes)
    steps, text = plan(capsys, spec)
    assert "2 of 4 trials done; chosen now: trial-3; 1 more will be chosen from the results" in text
    assert {n for n, s in steps.items() if s["action"] == "run"} == {"train[trial-3]", "evaluate[trial-3]",
                                                                     "generate[trial-3]"}
    assert main(["run", spec]) == 0
    assert [n for n in ran(fakes) if n.startswith("train")] == ["train[trial-3]", "train[trial-4]"]  # one per round
    resumed = study_file(search)["trials"]

    # the same search uninterrupted, in another store: the same four trials
    monkeypatch.setenv("ENGINE_STORE", str(tmp_path / "other"))
    assert main(["run", spec]) == 0
    assert [t["params"] for t in study_file_at(tmp_path / "other")["trials"]] == [t["params"] for t in resumed]


def study_file_at(store) -> dict:
    [path] = (store / "searches").glob("*.json")
    return json.loads(path.read_text())


def test_a_failed_trial_is_recorded_and_the_search_goes_on(search, capsys, fakes, monkeypatch):
    import fake_stages

    spec = write_sweep(search, SEARCH.replace("trials: 4", "trials: 3"))
    real, calls = fake_stages.fake_run("train"), []

    def train(ctx):
        calls.append(ctx.params["train"]["learning_rate"])
        if len(calls) == 2:  # trial-2's training
            from engine.errors import StageError

            raise StageError("simulated: out of memory")
        return real(ctx)

    from engine.stages import STAGES

    monkeypatch.setattr(STAGES["train"], "run", train)
    assert main(["run", spec]) == 0
    err = capsys.readouterr().err
    assert "failed: train[trial-2]; the search goes on with the other trials" in err, err
    record = json.loads((search / "specs" / "s.lock.json").read_text())
    done = record["sweep"]["search"]["done"]
    assert [t["state"] for t in done] == ["complete", "fail", "complete"]
    assert done[1]["params"]["train.learning_rate"] == calls[1] and "simulated: out of memory" in done[1]["error"]
    assert [v["name"] for v in record["sweep"]["variants"]] == ["trial-1", "trial-3"]
    ran(fakes)
    assert main(["run", spec]) == 0
    assert ran(fakes) == []  # a failed trial is done: not tried again


def test_search_errors_are_located(search, capsys):
    spec = write_sweep(search, SEARCH.replace("{low: 1.0e-5, high: 1.0e-2, log: true}", "{low: 0, high: 1.0e-2, log: true}"))
    assert main(["validate", spec]) == 2
    err = capsys.readouterr().err
    assert "$.sweep.search.space.train.learning_rate" in err and "log: true needs low above 0" in err, err
    spec = write_sweep(search, SEARCH + "  grid: {train.epochs: [1, 2]}\n")
    assert main(["validate", spec]) == 2
    assert "does not go with sweep.search" in capsys.readouterr().err
    spec = write_sweep(search, SEARCH.replace("train.batch_size", "runtime.device").replace("[2, 4, 8]", "[cpu, cuda]"))
    assert main(["plan", spec]) == 2
    assert "no stage's output depends on this path" in capsys.readouterr().err


def test_the_report_draws_the_metric_per_trial_and_the_best_so_far(search, capsys):
    spec = write_sweep(search, SEARCH)
    assert main(["run", spec]) == 0
    assert main(["report", spec, "-o", "report.html"]) == 0
    page = (search / "report.html").read_text()
    assert "search: the metric per trial, and the best so far" in page
    assert 'aria-label="evaluate.loss per trial"' in page and "best so far" in page
    for name in ("trial-1", "trial-4"):
        assert name in page  # the ranking table names the trials


def test_validate_checks_every_choice_and_range_end_at_its_place(search, capsys):
    spec = write_sweep(search, SEARCH.replace("[2, 4, 8]", "[2, 0, 8]").replace("high: 1.0e-2", "high: 2.0"))
    assert main(["validate", spec]) == 2
    err = capsys.readouterr().err
    lines = (search / spec).read_text().splitlines()
    row = next(i for i, line in enumerate(lines, 1) if "train.batch_size" in line)
    assert f"s.yaml:{row}:" in err and "train.batch_size" in err and "must be >= 1 (got 0)" in err, err
    assert "must be <= 1 (got 2.0)" in err, err


def test_planning_a_search_imports_optuna_but_nothing_heavy(search):
    import subprocess
    import sys

    spec = write_sweep(search, SEARCH)
    check = ("import sys; from engine.cli import main; code = main(['plan', sys.argv[1]]); "
             "print('HEAVY:' + ','.join(sorted(m for m in ('torch', 'transformers', 'datasets', 'optuna') if m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", check, spec], cwd=search, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert done.returncode == 0, done.stderr
    assert "HEAVY:optuna\n" in done.stdout, done.stdout


def test_a_store_without_the_study_rebuilds_it_without_training(search, capsys, fakes):
    spec = write_sweep(search, TPE)
    assert main(["run", spec]) == 0
    before = study_file(search)["trials"]
    ran(fakes)
    [path] = (Path(os.environ["ENGINE_STORE"]) / "searches").glob("*.json")
    path.unlink()
    assert main(["run", spec]) == 0
    assert ran(fakes) == []
    assert study_file(search)["trials"] == before
