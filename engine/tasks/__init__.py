"""Task families, in one explicit dict (see family.py for what a family supplies)."""
from __future__ import annotations

from engine.tasks import causal_lm, classification
from engine.tasks.family import TaskFamily

TASKS: dict[str, TaskFamily] = {
    causal_lm.FAMILY.name: causal_lm.FAMILY,
    classification.FAMILY.name: classification.FAMILY,
}
