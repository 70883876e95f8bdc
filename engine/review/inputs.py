"""The input digests of every stage of a spec, in the working tree or as of a git revision.

In the working tree they are what `engine plan` computes (engine.core.plan.input_digests). At a
revision they are what `engine plan` would compute after checking that revision out, without
checking anything out: the same labels (relative to the project root) and the same digests.

Which spec fields name files of the project, per stage kind (the same fields the stages'
`inputs` read; a test holds the two equal on a clean checkout):

    data, tokenizer   data.source.files              paths or globs, expanded at the revision
    model             model.path, model.config.tokenizer.path (folders), model.gguf.path (a file)

Every other input (hub commits, package versions, builtin weights, corpus files, check versions)
comes from this machine's installation, which is the same for both sides of a diff. A file that
git does not track because it is ignored (data kept out of git) is read from the working tree
for both sides, and said so.
"""
from __future__ import annotations

import glob as globlib
import os
import subprocess
from pathlib import Path

from engine.core.digests import DigestCache
from engine.core.graph import Graph
from engine.core.payload import Known
from engine.core.project import input_label, project_root
from engine.errors import StageError
from engine.review.gitfiles import GitTree
from engine.spec import Spec


def working_tree_inputs(graph: Graph, digests: DigestCache) -> dict[str, dict[str, str]]:
    """{node: {label: digest}} from the files on disk, exactly as a run reads them."""
    from engine.core.plan import input_digests

    return {name: input_digests(graph, graph.nodes[name], digests) for name in graph.order}


class RevisionFiles:
    """Absolute working-tree paths answered from a git revision; paths outside the repository
    (installed packages) and git-ignored files are read from disk."""

    def __init__(self, tree: GitTree, digests: DigestCache):
        self.tree, self.digests = tree, digests
        self.from_disk: set[str] = set()  # ignored files read from the working tree
        self.notes: list[str] = []
        self._rels: dict[str, str] = {}  # absolute path -> path in the tree, for the files globbed
        self._roots: dict[Path, str] = {}

    def rel(self, path: str | Path) -> str | None:
        """The path inside the repository (POSIX), or None for a path outside it."""
        if str(path) in self._rels:
            return self._rels[str(path)]
        rel = os.path.relpath(os.path.abspath(path), self.tree.top)
        return None if rel == ".." or rel.startswith("../") else Path(rel).as_posix().removeprefix("./")

    def label(self, spec: Spec, path: str) -> str:
        """engine.core.project.input_label, without a symlink check for a file of the revision (it
        is in the repository by construction; its symlinks are followed inside the tree only)."""
        rel = self._rels.get(path)
        if rel is None:
            return input_label(spec, path)
        if spec.root not in self._roots:  # real, as the repository's top is
            self._roots[spec.root] = os.path.realpath(project_root(spec.root))
        root = self._roots[spec.root]
        return rel if root == str(self.tree.top) else Path(os.path.relpath(path, root)).as_posix()

    def glob(self, pattern: str) -> list[str]:
        """Files matching a path or glob (absolute), as engine.dataprep.rows expands them on disk."""
        rel = self.rel(pattern)
        if rel is None:
            return _disk_glob(pattern)
        found = []
        for path in self.tree.glob(rel):
            full = os.path.join(self.tree.top, path)
            self._rels[full] = path
            found.append(full)
        return found or self._ignored(_disk_glob(pattern))

    def is_dir(self, path: Path) -> bool:
        rel = self.rel(path)
        if rel is None:
            return path.is_dir()
        return self.tree.is_dir(rel) or bool(path.is_dir() and self._ignored([str(path)]))

    def digest_all(self, paths: list[str]) -> dict[str, str]:
        """{path: content digest} of files and folders, as engine.core.digests.DigestCache.of gives
        them; the files of the revision in one git process."""
        from engine.core.canonical import sha256_of

        out, in_tree = {}, {}
        for path in paths:
            rel = self.rel(path)
            if rel is None or path in self.from_disk:
                out[path] = self.digests.of(path)
            elif self.tree.is_file(rel):
                in_tree[path] = rel
            else:
                out[path] = sha256_of(self.tree.folder_listing(rel))
        by_rel = self.tree.file_digests(list(in_tree.values()))
        return out | {path: by_rel[rel] for path, rel in in_tree.items()}

    def _ignored(self, paths: list[str]) -> list[str]:
        """`paths` if git ignores every one of them (then they are read from disk), else []."""
        if not paths:
            return []
        out = subprocess.run(["git", "check-ignore", "--no-index", "-z", "--stdin"], cwd=self.tree.top,
                             input="\0".join(paths).encode(), capture_output=True)
        ignored = {os.path.abspath(p.decode()) for p in out.stdout.split(b"\0") if p}
        if not all(os.path.abspath(p) in ignored for p in paths):
            return []
        self.from_disk.update(paths)
        more = f" and {len(paths) - 1} more files" if len(paths) > 1 else ""
        note = f"{self.rel(paths[0])}{more} {'are' if more else 'is'} ignored by git: read from the working tree for both sides"
        if note not in self.notes:
            self.notes.append(note)
        return paths


def _disk_glob(pattern: str) -> list[str]:
    if not globlib.has_magic(pattern):
        return [pattern] if os.path.isfile(pattern) else []
    return sorted(p for p in globlib.glob(pattern, recursive=True) if os.path.isfile(p))


def revision_inputs(graph: Graph, files: RevisionFiles) -> dict[str, dict[str, str]]:
    """{node: {label: digest}} as of the revision `files` reads."""
    out = {}
    for name in graph.order:
        node = graph.nodes[name]
        spec = graph.spec_of(node)
        reader = PROJECT_FILES.get(node.kind)
        project = reader(spec, files) if reader else None
        # the project's files as of the revision; where the spec names none, what the stage reads
        # from this machine's installation (versions, package files), the same at every revision
        sources = project if project is not None else graph.registry[node.kind].inputs(spec)
        paths = [str(src) for src in sources.values() if not isinstance(src, Known)]
        digests = files.digest_all(paths)
        out[name] = {label: str(src) if isinstance(src, Known) else digests[str(src)] for label, src in sources.items()}
    return out


def _data_files(spec: Spec, files: RevisionFiles) -> dict[str, str] | None:
    """The data files at the revision (engine.dataprep.rows.source_files, on git's tree)."""
    from engine.spec.data_files import sources_of

    chosen = [(at, source) for at, source in sources_of(spec) if "files" in source]
    if not chosen:
        return None
    out = {}
    for at, source in chosen:
        groups = source["files"] if isinstance(source["files"], dict) else {"all": source["files"]}
        for patterns in groups.values():
            for pattern in [patterns] if isinstance(patterns, str) else patterns:
                matches = files.glob(os.path.join(spec.root, pattern))
                if not matches:
                    what = "no file matches" if globlib.has_magic(pattern) else "data file not found:"
                    shown = ".".join(map(str, at + ("files",)))
                    raise StageError(f"{shown}: {what} {pattern} in revision {files.tree.rev}")
                out.update({files.label(spec, path): path for path in matches})
    return out


def _model_files(spec: Spec, files: RevisionFiles) -> dict[str, str] | None:
    """A model folder, a GGUF file or a tokenizer folder of the project, at the revision."""
    for field, folder in (("model.path", True), ("model.gguf.path", False), ("model.config.tokenizer.path", True)):
        value = spec.get(field)
        if value is None:
            continue
        path = spec.root / value
        if not (files.is_dir(path) if folder else files.glob(str(path))):
            raise StageError(f"{field}: {value} is not a {'folder' if folder else 'file'} in revision {files.tree.rev}")
        return {input_label(spec, path): str(path)}
    return None


PROJECT_FILES = {"data": _data_files, "tokenizer": _data_files, "model": _model_files}
