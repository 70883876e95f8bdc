"""Reviewing experiments: specs and records as of git revisions, semantic diffs, comparisons."""
