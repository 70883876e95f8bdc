"""Executors: where a run's stages are built when not one at a time in this process.

Core's runner decides what runs and hands an executor (engine.core.runner.Executor) each step
whose upstream is ready; the executor builds it with the runner's own `build_step`, elsewhere.
An executor is given what it needs by its caller (the spec's path, and the resolver that makes a
stage graph of it), so that neither core nor an executor imports the stage kinds.
"""
