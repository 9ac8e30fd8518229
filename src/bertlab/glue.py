"""How GLUE scores a model (Wang et al., 2019): the metrics of its tasks, the GLUE score, and scores relative to
the human baseline (Nangia and Bowman, 2019).

Chapter 6 uses these, and checks the metrics against scikit-learn and SciPy. Plain Python on sequences of
numbers: the benchmark's arithmetic is the lesson, not a library call.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

Score = float | Sequence[float]  # one metric, or a task's two (MRPC: F1 and accuracy, STS-B: Pearson and Spearman)

# Two rows of the GLUE leaderboard (test sets, scores x 100). Pairs: MRPC (F1, accuracy), STS-B (Pearson,
# Spearman), QQP (F1, accuracy), MNLI (matched, mismatched). The human baseline: Nangia and Bowman (2019),
# crowd workers who learned each task from a few instructions and 20 examples; published GLUE score 87.1.
HUMAN = {"CoLA": 66.4, "SST-2": 97.8, "MRPC": (86.3, 80.8), "STS-B": (92.7, 92.6), "QQP": (59.5, 80.4),
         "MNLI": (92.0, 92.8), "QNLI": 91.2, "RTE": 93.6, "WNLI": 95.9}
# BERT-large, the leaderboard entry of Devlin et al. (2019) as recorded by Liu et al. (2019, MT-DNN, Table 2,
# leaderboard of 25 February 2019); published GLUE score 80.5.
BERT_LARGE = {"CoLA": 60.5, "SST-2": 94.9, "MRPC": (89.3, 85.4), "STS-B": (87.6, 86.5), "QQP": (72.1, 89.3),
              "MNLI": (86.7, 85.9), "QNLI": 92.7, "RTE": 70.1, "WNLI": 65.1}
PUBLISHED_SCORES = {"human baseline": 87.1, "BERT-large": 80.5}


def _same_length(gold: Sequence, predicted: Sequence) -> None:
    if len(gold) != len(predicted) or len(gold) == 0:
        raise ValueError(f"gold and predicted must be non-empty and equally long, got {len(gold)} and "
                         f"{len(predicted)}.")


def accuracy(gold: Sequence[int], predicted: Sequence[int]) -> float:
    """The share of examples whose predicted label is the gold one.

    Chapter: book/glue.md
    """
    _same_length(gold, predicted)
    return sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold)


def confusion_counts(gold: Sequence[int], predicted: Sequence[int]) -> tuple[int, int, int, int]:
    """(true positives, false positives, false negatives, true negatives) of binary labels, 1 = positive."""
    _same_length(gold, predicted)
    pairs = list(zip(gold, predicted, strict=True))
    return (sum(g == 1 and p == 1 for g, p in pairs), sum(g != 1 and p == 1 for g, p in pairs),
            sum(g == 1 and p != 1 for g, p in pairs), sum(g != 1 and p != 1 for g, p in pairs))


def f1(gold: Sequence[int], predicted: Sequence[int]) -> float:
    """F1 of the positive class (MRPC, QQP): the harmonic mean of precision and recall; 0 when no example is
    predicted or gold positive.

    Chapter: book/glue.md
    """
    tp, fp, fn, _ = confusion_counts(gold, predicted)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def matthews_corrcoef(gold: Sequence[int], predicted: Sequence[int]) -> float:
    """Matthews correlation of binary labels (CoLA): the correlation between gold and predicted labels, 0 for
    a constant prediction (whatever share of the examples it gets right), 1 for a perfect one.

    Chapter: book/glue.md
    """
    tp, fp, fn, tn = confusion_counts(gold, predicted)
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / denominator if denominator else 0.0


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's correlation of two sequences of numbers (STS-B): their covariance over the product of their
    standard deviations.

    Chapter: book/glue.md
    """
    _same_length(x, y)
    mx, my = sum(x) / len(x), sum(y) / len(y)
    cov = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    spread = math.sqrt(sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y))
    if spread == 0:
        raise ValueError("a correlation needs values that vary: one of the sequences is constant.")
    return cov / spread


def average_ranks(values: Sequence[float]) -> list[float]:
    """The rank of each value, 1 for the smallest; tied values share the mean of the ranks they span."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for i in order[start:end + 1]:
            ranks[i] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's correlation (STS-B): Pearson's on the ranks, so that only the order of the scores counts.

    Chapter: book/glue.md
    """
    return pearson(average_ranks(x), average_ranks(y))


def task_score(score: Score) -> float:
    """A task's one number: its metric, or the mean of its two."""
    values = [score] if isinstance(score, int | float) else list(score)
    if not values:
        raise ValueError("a task needs at least one metric.")
    return sum(values) / len(values)


def glue_score(results: Mapping[str, Score]) -> float:
    """The GLUE score: the mean over tasks of each task's score (`task_score`), on the 0-100 scale.

    Chapter: book/glue.md
    """
    if not results:
        raise ValueError("no task results to average.")
    return sum(task_score(score) for score in results.values()) / len(results)


def human_normalised(results: Mapping[str, Score], human: Mapping[str, Score]) -> dict[str, Score]:
    """Each task's metrics divided by the human baseline's on the same metric: 1 = as good as the crowd
    workers. A task with two metrics gives a tuple of two ratios."""
    missing = sorted(set(results) - set(human))
    if missing:
        raise ValueError(f"no human baseline for {missing}.")
    ratios: dict[str, Score] = {}
    for task, score in results.items():
        if isinstance(score, int | float):
            ratios[task] = score / float(human[task])
        else:
            ratios[task] = tuple(s / h for s, h in zip(score, human[task], strict=True))
    return ratios
