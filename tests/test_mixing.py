"""data.sources and data.mix: several sources mixed by weight, seeded and keyed, counted per
source and split; located errors. The counting is pure; one run each through the data stage."""
from __future__ import annotations

import json
import random

import pytest

from engine.cli import main
from engine.dataprep import mixing
from tiny import PATH_MODEL, screenplay_records, spec_text, write_jsonl

SOURCES = """\
  sources:
    - {source: {files: data/plays.jsonl}, weight: 3, name: plays}
    - {source: {files: data/films.jsonl}, weight: 1, name: films}
"""


def mixed_spec(root, mix: str | None = "interleave", sources: str = SOURCES):
    """spec.yaml on the tiny model with two sources of 40 records each (32 train, 4 validation, 4 test)."""
    write_jsonl(root / "data" / "plays.jsonl", screenplay_records(40, seed=1))
    write_jsonl(root / "data" / "films.jsonl", [{**r, "title": "Film " + r["title"]} for r in screenplay_records(40, seed=2)])
    text = spec_text(PATH_MODEL).replace("  source: {files: data/scenes.jsonl}\n", sources + (f"  mix: {mix}\n" if mix else ""))
    (root / "spec.yaml").write_text(text)
    return root / "spec.yaml"


# -- the counts, pure -----------------------------------------------------------------------------

def test_weights_three_to_one_give_the_expected_counts():
    assert mixing.counts([3, 1], [40, 40], "concat") == [120, 40]  # repeat factors
    assert mixing.counts([3, 1], [40, 40], "interleave") == [60, 20]  # shares of 80
    assert mixing.counts([1, 1, 1], [10, 10, 10], "interleave") == [10, 10, 10]
    assert sum(mixing.counts([1, 1, 1], [3, 3, 4], "interleave")) == 10  # largest remainders add up
    assert mixing.counts([0.5, 1.5], [10, 10], "concat") == [5, 15]


def test_over_and_under_sampling_are_whole_passes_then_a_seeded_subset():
    records = list(range(10))
    twice_and_a_half = mixing.take(records, 25, random.Random(0))
    assert twice_and_a_half[:20] == records * 2 and len(set(twice_and_a_half[20:])) == 5
    half = mixing.take(records, 5, random.Random(0))
    assert len(set(half)) == 5 and half == sorted(half)
    assert mixing.take(records, 5, random.Random(0)) == half  # seeded


def test_interleave_draws_every_source_to_its_count_in_a_seeded_order():
    plays, films = [("p", i) for i in range(40)], [("f", i) for i in range(40)]
    sources = [{"weight": 3}, {"weight": 1}]
    mixed, given = mixing.mix([plays, films], sources, "interleave", seed=7)
    assert given == [60, 20] and len(mixed) == 80
    assert sum(1 for r in mixed if r[0] == "p") == 60 and len({r for r in mixed if r[0] == "p"}) == 40  # over-sampled
    assert len({r for r in mixed if r[0] == "f"}) == 20  # under-sampled: 20 different records
    assert mixing.mix([plays, films], sources, "interleave", seed=7)[0] == mixed
    assert mixing.mix([plays, films], sources, "interleave", seed=8)[0] != mixed
    assert mixed[:10] != plays[:10]  # interleaved, not one source after the other
    concat, _ = mixing.mix([plays, films], sources, "concat", seed=7)
    assert concat == plays * 3 + films


# -- through the data stage -----------------------------------------------------------------------

@pytest.mark.parametrize("mix, expected", [("interleave", (48, 16)), ("concat", (96, 32)), (None, (96, 32))])
def test_mixing_two_sources_three_to_one_counts_per_source_and_split(mix, expected, scenes_project, capsys):
    mixed_spec(scenes_project, mix)
    assert main(["run", "spec.yaml", "--until", "data"]) == 0
    facts = json.loads((scenes_project / "spec.lock.json").read_text())["nodes"]["data"]["facts"]
    assert facts["mix"] == (mix or "concat")
    assert facts["sources"] == {
        "plays": {"train_records": 32, "train": expected[0], "validation": 4, "test": 4},
        "films": {"train_records": 32, "train": expected[1], "validation": 4, "test": 4}}
    assert (facts["train_records"], facts["validation_records"], facts["test_records"]) == (sum(expected), 8, 8)
    err = capsys.readouterr().err
    assert f"data.mix {mix or 'concat'}: training records plays {expected[0]} of 32 (over-sampled)" in err, err


def test_the_mix_is_keyed_and_a_spec_without_sources_keeps_its_key(tmp_path):
    from engine.pipeline import resolve_spec
    from engine.spec import load_spec

    def data_node(path):
        return resolve_spec(load_spec(path)).nodes["data"]

    (tmp_path / "plain.yaml").write_text(spec_text(PATH_MODEL))
    assert not {"sources", "mix"} & set(data_node(tmp_path / "plain.yaml").params["data"])
    keys = set()
    for mix in ("interleave", "concat"):
        node = data_node(mixed_spec(tmp_path, mix))
        assert node.params["data"]["sources"][0]["weight"] == 3
        keys.add(json.dumps(node.params, sort_keys=True, default=str))
    assert len(keys) == 2
    three_to_two = SOURCES.replace("weight: 1,", "weight: 2,")
    assert data_node(mixed_spec(tmp_path, "concat", three_to_two)).params != data_node(mixed_spec(tmp_path, "concat")).params


def test_located_errors(scenes_project, capsys):
    both = SOURCES + "  source: {files: data/scenes.jsonl}\n"
    mixed_spec(scenes_project, None, both)
    assert main(["validate", "spec.yaml"]) == 2
    assert "$.data.sources  does not go with data.source" in capsys.readouterr().err

    mixed_spec(scenes_project, "interleave", SOURCES.replace("films.jsonl}", "film.jsonl}"))
    assert main(["validate", "spec.yaml"]) == 2
    err = capsys.readouterr().err
    assert "spec.yaml:10:24" in err and "$.data.sources[1].source.files" in err and "data file not found: data/film.jsonl" in err, err

    mixed_spec(scenes_project, "interleave", SOURCES.replace("name: films", "name: plays"))
    assert main(["validate", "spec.yaml"]) == 2
    assert "two sources are named plays" in capsys.readouterr().err

    (scenes_project / "spec.yaml").write_text(spec_text(PATH_MODEL).replace("  packing: true\n", "  packing: true\n  mix: concat\n"))
    assert main(["validate", "spec.yaml"]) == 2
    assert "$.data.mix  mixes data.sources" in capsys.readouterr().err
