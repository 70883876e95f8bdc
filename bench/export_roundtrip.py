"""Export the quickstart's fine-tuned model as GGUF and evaluate the file as a spec's starting model.

Measures the export time per GGUF type and how far the imported file's test loss is from the
fine-tuned model's recorded test loss (the round trip `engine export --format gguf` -> `model.gguf`).
Needs the quickstart's store entries (`engine run specs/quickstart.yaml` first).

    python bench/export_roundtrip.py [--types f16 q8_0]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--types", nargs="+", default=["f16", "q8_0"])
    args = parser.parse_args()
    record = json.loads((REPO / "specs/quickstart.lock.json").read_text())
    target = record["nodes"]["evaluate"]["metrics"]["loss"]
    print(f"quickstart fine-tuned test loss (record): {target:.6f}")
    spec = (REPO / "specs/quickstart.yaml").read_text()
    engine = [sys.executable, "-m", "engine"]
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / ".engine").mkdir()  # a project of its own: the GGUF file and the spec live in it
        for kind in args.types:
            started = time.time()
            subprocess.run(engine + ["export", str(REPO / "specs/quickstart.yaml"), "--to", str(project / kind),
                                     "--format", "gguf", "--gguf-type", kind, "--force"], check=True, cwd=REPO,
                           stdout=subprocess.DEVNULL)
            exported = time.time() - started
            file = next((project / kind).glob("*.gguf"))
            text = spec.replace("  builtin: smollm2-135m\n  lora: {r: 8, alpha: 16, dropout: 0.05}",
                                f"  gguf: {{path: {kind}/{file.name}}}")
            (project / f"{kind}.yaml").write_text(text)
            env = dict(os.environ, ENGINE_STORE=str(project / ".engine"))
            subprocess.run(engine + ["run", f"{kind}.yaml", "--until", "evaluate[baseline]"], check=True, cwd=project,
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            nodes = json.loads((project / f"{kind}.lock.json").read_text())["nodes"]
            loss = nodes["evaluate[baseline]"]["metrics"]["loss"]
            print(f"{kind}: {file.stat().st_size / 1e6:.1f} MB, export {exported:.1f} s, imported test loss {loss:.6f} "
                  f"(difference {loss - target:+.6f}, {abs(loss - target) / target:.2e} relative)")


if __name__ == "__main__":
    main()
