"""`engine cache gc` keeps what the project's git history names: the records of the working tree,
of every local branch tip and of the current branch's last --keep-commits commits (every commit
with --all-commits). Through the CLI, in team projects (tests/projects.py) with the fake stages."""
from __future__ import annotations

import shutil

import pytest

from engine.cli import main
from projects import entries, git


@pytest.fixture
def team(project, monkeypatch):
    """The team project with its own store (.engine/, which git ignores) on a branch named main."""
    monkeypatch.setenv("ENGINE_STORE", str(project / ".engine"))
    git(project, "checkout", "-q", "-b", "main")
    return project


def commit(root, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)


def set_learning_rate(root, value: str) -> None:
    spec = root / "specs" / "x.yaml"
    spec.write_text(spec.read_text().replace("learning_rate: 5.0e-5", f"learning_rate: {value}"))


def gc(capsys, *args: str) -> tuple[str, list[str]]:
    """`engine cache gc --grace 0 ARGS`: what it says it keeps, and the stages it removed (or would)."""
    capsys.readouterr()
    assert main(["cache", "gc", "--grace", "0", *args]) == 0
    out = capsys.readouterr().out.splitlines()
    removed = sorted(next(word for word in line.split() if "/" in word).split("/")[1]  # "removed KEY scenes/train ..."
                     for line in out if line.startswith(("removed", "would remove")))
    return out[0], removed


def test_gc_keeps_the_entries_of_a_record_committed_three_commits_ago(team, capsys):
    assert main(["run", "specs/x.yaml"]) == 0
    commit(team, "x at 5e-5")
    old = entries(team / ".engine")
    set_learning_rate(team, "1.0e-4")
    assert main(["run", "specs/x.yaml"]) == 0
    commit(team, "x at 1e-4")
    for n in (1, 2):
        (team / "notes.txt").write_text(f"note {n}\n")
        commit(team, f"note {n}")
    assert len(list((team / ".engine" / "store").glob("*/*"))) == 8  # 5e-5's train, evaluate, generate: HEAD~3 only

    said, removed = gc(capsys)
    assert said == ("keeping entries named by records in the working tree (1: specs/x.lock.json), 1 branch tip and "
                    "the last 4 commits of main: 8 entries")
    assert removed == []
    assert gc(capsys, "--keep-commits", "4", "--dry-run")[1] == []  # HEAD, HEAD~1, HEAD~2 and HEAD~3
    assert gc(capsys, "--keep-commits", "3", "--dry-run")[1] == ["evaluate", "generate", "train"]

    said, removed = gc(capsys, "--keep-commits", "0")  # the working tree's records and HEAD's, the same here
    assert said == ("keeping entries named by records in the working tree (1: specs/x.lock.json) and 1 branch tip: "
                    "5 entries")
    assert removed == ["evaluate", "generate", "train"]
    assert not {old["train"], old["evaluate"], old["generate"]} & set(entries(team / ".engine").values())


def test_gc_keeps_the_entries_of_a_record_on_another_local_branch(team, capsys):
    assert main(["run", "specs/x.yaml"]) == 0
    commit(team, "x at 5e-5")
    git(team, "checkout", "-q", "-b", "faster")
    set_learning_rate(team, "1.0e-4")
    assert main(["run", "specs/x.yaml"]) == 0
    commit(team, "x at 1e-4")
    faster = entries(team / ".engine")
    git(team, "checkout", "-q", "main")  # the working tree's record is 5e-5's again

    said, removed = gc(capsys, "--keep-commits", "0")
    assert said == ("keeping entries named by records in the working tree (1: specs/x.lock.json) and 2 branch tips: "
                    "8 entries")
    assert removed == []
    git(team, "branch", "-q", "-D", "faster")
    said, removed = gc(capsys)  # not among main's last commits either
    assert said.endswith("1 branch tip and the last 1 commit of main: 5 entries")
    assert removed == ["evaluate", "generate", "train"]
    assert faster["train"] not in entries(team / ".engine").values()


def test_all_commits_keeps_the_entries_of_every_commit(team, capsys):
    assert main(["run", "specs/x.yaml"]) == 0
    commit(team, "x at 5e-5")
    set_learning_rate(team, "1.0e-4")
    assert main(["run", "specs/x.yaml"]) == 0
    commit(team, "x at 1e-4")
    said, removed = gc(capsys, "--keep-commits", "0", "--all-commits")
    assert said.endswith("1 branch tip and all 2 commits: 8 entries") and removed == []
    assert main(["cache", "gc", "--keep-commits", "-1"]) == 2
    assert "--keep-commits -1: give 0 or more commits" in capsys.readouterr().err


def test_a_file_in_the_history_that_is_not_a_record_keeps_nothing_and_is_named(team, capsys):
    assert main(["run", "specs/x.yaml"]) == 0
    (team / "specs" / "x.lock.json").write_text("{ half a record")
    (team / "tool.lock.json").symlink_to("/etc/hostname")  # a symlink is never followed
    commit(team, "a broken record")
    (team / "tool.lock.json").unlink()  # (the working tree's records are read as files)
    assert main(["run", "specs/x.yaml"]) == 0  # rewrites the record in the working tree
    capsys.readouterr()
    assert main(["cache", "gc", "--grace", "0"]) == 0
    captured = capsys.readouterr()
    assert ": 5 entries" in captured.out and "0 entries, 0 B freed" in captured.out
    commit_id = git(team, "rev-parse", "HEAD").strip()[:12]
    assert (f"note: 1 files named *.lock.json in the history are not records of this engine and keep nothing: "
            f"{commit_id}:specs/x.lock.json: not JSON (JSONDecodeError)") in captured.err


def test_outside_a_git_repository_gc_keeps_the_working_tree_and_says_so(team, capsys):
    assert main(["run", "specs/x.yaml"]) == 0
    shutil.rmtree(team / ".git")  # the project root is now the folder holding .engine/
    said, removed = gc(capsys)
    assert said == ("keeping entries named by records in the working tree (not a git repository, so no history; 1: "
                    "specs/x.lock.json): 5 entries")
    assert removed == []
