"""Classification metrics from predictions, in plain Python (no scikit-learn dependency).

Macro-F1 averages the per-class F1 with equal weight, so a majority class cannot hide a class
the model never gets right; the majority-class baseline is reported beside it.
"""
from __future__ import annotations


def confusion(truth: list[int], predicted: list[int], classes: int) -> list[list[int]]:
    """matrix[true][predicted] counts."""
    matrix = [[0] * classes for _ in range(classes)]
    for t, p in zip(truth, predicted):
        matrix[t][p] += 1
    return matrix


def per_class(matrix: list[list[int]], names: list[str]) -> dict[str, dict[str, float]]:
    out = {}
    for i, name in enumerate(names):
        tp = matrix[i][i]
        predicted = sum(row[i] for row in matrix)
        support = sum(matrix[i])
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[name] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    return out


def summary(truth: list[int], predicted: list[int], names: list[str]) -> dict:
    """accuracy, macro_f1 (over classes present in truth or predictions), per_class, confusion_matrix."""
    matrix = confusion(truth, predicted, len(names))
    classes = per_class(matrix, names)
    seen = [n for i, n in enumerate(names) if classes[n]["support"] or sum(row[i] for row in matrix)]
    return {
        "accuracy": sum(matrix[i][i] for i in range(len(names))) / max(len(truth), 1),
        "macro_f1": sum(classes[n]["f1"] for n in seen) / max(len(seen), 1),
        "per_class": classes,
        "confusion_matrix": {"labels": names, "rows_true_columns_predicted": matrix},
    }
