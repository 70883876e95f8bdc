"""`engine ... | head`: every command ends the same way when the reader of its output leaves.

The rule (engine.cli.main): a write that finds the pipe closed ends the command quietly with 141,
as SIGPIPE would; a command that wrote everything before the reader left ends as usual.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO
from projects import BUILTIN_SPEC, git

COMMANDS = ["--help", "schema", "validate specs/x.yaml", "plan specs/x.yaml", "diff HEAD:specs/x.yaml",
            "compare specs/x.yaml --rev HEAD", "show specs/x.yaml", "cache ls"]


@pytest.fixture
def repo(tmp_path):
    """A git repository with one committed spec, edited since, and a record of it."""
    root = tmp_path / "repo"
    (root / "specs").mkdir(parents=True)
    (root / "specs" / "data.txt").write_text("# ACT I\n\nSCENE I.\n")
    (root / "specs" / "x.yaml").write_text(BUILTIN_SPEC)
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "first")
    (root / "specs" / "x.yaml").write_text(BUILTIN_SPEC.replace("5.0e-5", "1e-4"))
    record = {"spec": "scenes", "engine": "0", "seed": 42,
              "nodes": {"generate": {"key": "k", "wall_s": 1.0, "metrics": {"samples": 3.0}}}}
    (root / "specs" / "x.lock.json").write_text(json.dumps(record))
    return root


def engine(command: str, cwd, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *command.split()], cwd=cwd, stdout=stdout,
                          stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.mark.parametrize("command", COMMANDS)
def test_a_closed_pipe_ends_every_command_quietly_with_141(repo, command):
    works = engine(command, repo)
    assert works.returncode == 0 and works.stdout, works.stderr  # the command works when its output is read
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has left before the first byte: every write fails with EPIPE
    try:
        out = engine(command, repo, write_end)
    finally:
        os.close(write_end)
    assert (out.returncode, out.stderr) == (141, "")


@pytest.mark.parametrize("command", COMMANDS)
def test_head_takes_the_first_line_and_the_command_ends_quietly(repo, command):
    out = subprocess.run(f"{sys.executable} -m engine {command} | head -1; echo \"exit ${{PIPESTATUS[0]}}\"", shell=True,
                         executable="/bin/bash", cwd=repo, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    first, status = out.stdout.splitlines()
    assert first and out.stderr == ""
    assert status in ("exit 0", "exit 141")  # 0 when all was written before head left, else 141; never 1
