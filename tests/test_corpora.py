"""Packaged corpora, read as files from their installed packages."""
from __future__ import annotations

from engine.corpora import abc_tunes, mario_levels, shakespeare


def test_shakespeare_scenes_keep_structure():
    (path,) = shakespeare.play_files(plays=("twelfth-night",))
    scenes = list(shakespeare.scenes(path))
    assert len(scenes) == 18
    first = scenes[0]
    assert (first["title"], first["act"], first["scene"], first["folio"]) == ("Twelfth Night", "ACT I", "SCENE I", "comedy")
    assert first["setting"] == "DUKE ORSINO's palace."
    assert "**DUKE ORSINO**" in first["text"] and first["text"].startswith("### SCENE I.")


def test_folio_groups_select_plays():
    stems = {p.stem for p in shakespeare.play_files(folio=("history",))}
    assert "henry-v" in stems and "edward-iii" not in stems and len(stems) == 10


def test_abc_tunes_have_headers():
    tunes = [t for path in abc_tunes.files({"collections": ["oneills1850"]}) for t in abc_tunes.tunes(path)]
    assert len(tunes) > 1000
    assert all(t["text"].startswith("X:") for t in tunes)
    assert sum(bool(t["key"]) for t in tunes) / len(tunes) > 0.99


def test_abc_corpus_size():
    count = sum(1 for _ in abc_tunes.records({}))
    assert 12_000 < count < 16_000  # "about 13,000 folk tunes"


def test_mario_windows_round_trip():
    rows = mario_levels.grid(mario_levels.files({})[0])
    assert len(rows) == 14 and len(set(map(len, rows))) == 1
    records = list(mario_levels.records({"width": 50, "stride": 25}))
    assert len(records) == (len(rows[0]) - 50) // 25 + 1
    text = records[2][0]["text"]
    assert [len(line) for line in text.splitlines()] == [14] * 50
    assert mario_levels.from_columns(text) == [row[50:100] for row in rows]
