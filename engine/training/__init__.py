"""The training system behind the train stage (engine/stages/train.py).

    loop         train(): model setup, batch planning, trainer arguments, fit, save; top to bottom
    batches      how the effective batch is split (micro-batch, accumulation, ranks), steps per epoch
    speed        kernels, the micro-batch probe, compile, tokens/s, FLOPs and MFU
    distributed  ranks, launch settings, DDP/FSDP arguments
    launcher     starts the ranks (torch.distributed.run) and follows them; worker is one rank
    checkpoints  complete checkpoints (manifests), resuming, SIGTERM
    callbacks    the Trainer callbacks: progress, the non-finite-loss guard, checkpoint manifests
    loading      device choice, threads, quiet libraries, loading a trained model

Nothing here imports torch, transformers or datasets at import time except callbacks, which only
the training loop imports (inside `fit`): `engine validate`, `plan` and a cached `run` stay light.
"""
