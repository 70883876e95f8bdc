"""Reading data files: every format, and errors that name the file and the record."""
from __future__ import annotations

import json

import pytest

from engine.errors import StageError
from engine.dataprep import rows


def test_formats(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"t": "x"}\n\n{"t": "y"}\n')
    (tmp_path / "b.json").write_text(json.dumps({"data": [{"t": "x"}, {"t": "y"}, {"t": "z"}]}))
    (tmp_path / "c.csv").write_text("t,u\nx,1\ny,2\n")
    (tmp_path / "d.txt").write_text("one\ntwo\n\nthree\n")
    assert [r.fields["t"] for r in rows.read_file(tmp_path / "a.jsonl", "auto", "block", "a")] == ["x", "y"]
    assert len(rows.read_file(tmp_path / "b.json", "auto", "block", "b")) == 3
    assert rows.read_file(tmp_path / "c.csv", "auto", "block", "c")[1].fields == {"t": "y", "u": "2"}
    assert [r.fields["text"] for r in rows.read_file(tmp_path / "d.txt", "auto", "block", "d")] == ["one\ntwo", "three"]
    assert [r.fields["text"] for r in rows.read_file(tmp_path / "d.txt", "auto", "line", "d")] == ["one", "two", "three"]
    assert len(rows.read_file(tmp_path / "d.txt", "auto", "file", "d")) == 1
    assert rows.read_file(tmp_path / "d.txt", "auto", "block", "d")[1].origin == "d block at line 4"


def test_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"title": ["a", "b"], "content": ["x", "y"]}), tmp_path / "p.parquet")
    records = rows.read_file(tmp_path / "p.parquet", "auto", "block", "p.parquet")
    assert rows.render(records, "{title}: {content}") == ["a: x", "b: y"]


@pytest.mark.parametrize("name, content, message", [
    ("bad.jsonl", '{"t": 1}\n{oops\n', "bad.jsonl line 2: not valid JSON"),
    ("list.jsonl", "[1, 2]\n", "bad.jsonl line 1: expected a JSON object per line, got list"),
    ("x.weird", "text", "bad.jsonl: cannot tell the format from the extension '.weird'; set data.source.format"),
])
def test_bad_files(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(StageError) as caught:
        rows.read_file(tmp_path / name, "auto", "block", "bad.jsonl")
    assert message in str(caught.value)


def test_template_errors():
    with pytest.raises(StageError, match="malformed"):
        rows.template_fields("{title")
    with pytest.raises(StageError, match="unsupported placeholder"):
        rows.template_fields("{title.upper}")


def test_split_is_seeded_and_complete():
    a = rows.split_indices(100, 0.1, 0.2, seed=1)
    assert a == rows.split_indices(100, 0.1, 0.2, seed=1)
    assert a != rows.split_indices(100, 0.1, 0.2, seed=2)
    assert sorted(a["train"] + a["validation"] + a["test"]) == list(range(100))
    assert (len(a["validation"]), len(a["test"])) == (10, 20)


def test_nan_loss_stops_training():
    from engine.training.callbacks import Progress as _Progress

    class Ctx:
        def bar(self, total, description):
            class Bar:
                def advance(self, *a, **k):
                    pass

                def close(self):
                    pass

            return Bar()

    class State:
        global_step = 7

    callback = _Progress(Ctx(), 10, 100.0)
    callback.on_log(None, State(), None, logs={"loss": 2.5})
    with pytest.raises(StageError, match="loss became nan at step 7; lower train.learning_rate"):
        callback.on_log(None, State(), None, logs={"loss": float("nan")})
