"""The Ray executor: each stage whose upstream is ready becomes a Ray task (`engine run --executor ray`).

The driver (engine.core.runner) decides what runs and hands over a step's name, key and
payload, and its upstream keys. A task rebuilds the stage graph from the spec with the resolver
the caller gave (engine.pipeline.resolve_spec: the project must be at the same path on every
machine, as with any shared checkout), finds its upstream entries in the store (or pulls them
from the remote), and builds the stage through the same `build_step` as a local run: under the
key's lock, committed atomically, so two tasks (or two runs) never build one key twice. Log
lines travel back with the result; a worker draws no progress bars.

On one machine the store is shared by the driver and its workers. On a cluster, set
`runtime.remote` (or ENGINE_REMOTE) and run with `--push`: workers push what they build, and the
driver pulls it. Resources: a stage asks for 1 CPU, and a training, evaluation or generation
stage for 1 GPU when the cluster has GPUs and `runtime.device` is not `cpu`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from engine.core.remote_run import RemoteSettings
from engine.errors import UsageError

if TYPE_CHECKING:
    from engine.core.graph import Graph
    from engine.spec import Spec

    Resolve = Callable[[Spec], Graph]  # a loaded spec -> its stage graph (engine.pipeline.resolve_spec)

GPU_KINDS = ("train", "evaluate", "generate")
PASSED_ENV = ("ENGINE_", "HF_", "TRANSFORMERS_", "TOKENIZERS_", "OMP_NUM_THREADS", "PYTHONPATH")


class RayExecutor:
    """Runs steps as Ray tasks on the cluster at `address` (None: a local Ray instance started here).
    `resolve` (a module-level function, sent to the workers by reference) makes the stage graph of
    the spec at `spec_path` with `overrides`; `remote_settings` say which remote the workers pull
    from and whether they push what they build."""

    def __init__(self, resolve: Resolve, spec_path: Path, overrides: list[str], store_root: Path, options: dict,
                 address: str | None = None, remote_settings: RemoteSettings = RemoteSettings(), device: str = "auto",
                 trials: list | None = None):
        try:
            import ray
        except ImportError:
            raise UsageError("--executor ray needs Ray: pip install 'ray>=2.9'") from None
        self.ray = ray
        env = {k: v for k, v in os.environ.items() if k.startswith(PASSED_ENV)}
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
                     runtime_env={"env_vars": env}, **({} if address else {"num_cpus": os.cpu_count() or 1}))
        self.gpus = ray.cluster_resources().get("GPU", 0) > 0 and device != "cpu"
        self.args = (resolve, str(Path(spec_path).resolve()), list(overrides), str(store_root), dict(options),
                     remote_settings, trials)  # trials: a sweep.search's chosen ones, its variants
        self.task = ray.remote(max_retries=0)(build_in_worker)

    def submit(self, step, upstream: dict[str, str]):
        gpu = 1 if self.gpus and step.node.kind in GPU_KINDS else 0
        return self.task.options(num_cpus=1, num_gpus=gpu, name=f"engine {step.node.name}").remote(
            *self.args, step.node.name, step.key, step.payload, step.force, upstream)

    def wait(self, handles: list):
        done, _ = self.ray.wait(handles, num_returns=1)
        try:
            return done[0], self.ray.get(done[0])
        except self.ray.exceptions.RayError as exc:  # the worker died (killed, out of memory)
            return done[0], {"error": f"the Ray task stopped: {exc}", "events": []}

    def cancel(self, handles: list) -> None:
        for handle in handles:
            self.ray.cancel(handle, force=True)


def build_in_worker(resolve: Resolve, spec_path: str, overrides: list[str], store_root: str, options: dict,
                    remote_settings: RemoteSettings, trials: list | None, name: str, key: str, payload: dict, force: bool,
                    upstream: dict[str, str]) -> dict:
    """In a Ray worker: build one step into the shared store; returns its key and the events it sent."""
    from engine.core.context import NoBar
    from engine.core.digests import DigestCache
    from engine.core.plan import RUN, Step
    from engine.core.remote_run import RunLink
    from engine.core.runner import Event, build_step
    from engine.core.store import Store
    from engine.errors import EngineError
    from engine.spec import load_spec

    events: list[tuple[str, str, float]] = []

    class Collect:
        def event(self, event: Event) -> None:
            events.append((event.kind, event.message, event.seconds))

        def progress(self, node: str, total, description: str):
            return NoBar()

    try:
        graph = resolve(load_spec(Path(spec_path), overrides, trials=trials))
        store = Store(Path(store_root))
        digests = DigestCache(store.state_db)
        link = RunLink.open(remote_settings)
        entries = {}
        for dep, dep_key in upstream.items():
            entry, _ = store.check(dep_key)
            if entry is None and link is not None:
                entry = link.fetch(store, dep_key, dep, Collect())
            if entry is None:
                raise EngineError(f"upstream {dep} ({dep_key[:12]}) is not in this worker's store; on a cluster, set "
                                  "runtime.remote (or ENGINE_REMOTE) and run with --push")
            entries[dep] = entry
        step = Step(graph.nodes[name], RUN, key, payload, force=force)
        entry, fresh = build_step(step, graph, store, digests, Collect(), options, entries, link)
        if fresh and link is not None:
            link.publish(store, entry, name, Collect())
        digests.save()
        return {"key": entry.key, "fresh": fresh, "events": events}
    except Exception as exc:  # noqa: BLE001 - sent back as the stage's failure
        import traceback

        detail = str(exc) if isinstance(exc, EngineError) else "".join(traceback.format_exception_only(exc)).strip()
        return {"error": detail, "events": events}

