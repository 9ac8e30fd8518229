"""bertlab.glue: GLUE's metrics agree with scikit-learn's and SciPy's, and the GLUE score reproduces the
published leaderboard scores."""

from __future__ import annotations

import random

import pytest
import sklearn.metrics
from scipy.stats import pearsonr, spearmanr

from bertlab import glue


def labels(n: int, seed: int, positive: float = 0.7, right: float = 0.8) -> tuple[list[int], list[int]]:
    rng = random.Random(seed)
    gold = [int(rng.random() < positive) for _ in range(n)]
    return gold, [g if rng.random() < right else 1 - g for g in gold]


@pytest.mark.parametrize("seed", range(5))
def test_classification_metrics_agree_with_scikit_learn(seed):
    gold, predicted = labels(50 + 40 * seed, seed)
    assert glue.accuracy(gold, predicted) == pytest.approx(sklearn.metrics.accuracy_score(gold, predicted))
    assert glue.f1(gold, predicted) == pytest.approx(sklearn.metrics.f1_score(gold, predicted))
    assert glue.matthews_corrcoef(gold, predicted) == pytest.approx(sklearn.metrics.matthews_corrcoef(gold, predicted))
    tn, fp, fn, tp = sklearn.metrics.confusion_matrix(gold, predicted, labels=[0, 1]).ravel()
    assert glue.confusion_counts(gold, predicted) == (tp, fp, fn, tn)


def test_a_constant_classifier_has_no_correlation_and_f1_without_positives_is_zero():
    gold = [1] * 70 + [0] * 30
    assert glue.accuracy(gold, [1] * 100) == 0.7 and glue.matthews_corrcoef(gold, [1] * 100) == 0.0
    assert glue.f1(gold, [0] * 100) == 0.0
    assert glue.matthews_corrcoef([0, 1, 0, 1], [1, 0, 1, 0]) == -1.0
    with pytest.raises(ValueError, match="equally long"):
        glue.accuracy([1, 0], [1])


@pytest.mark.parametrize("seed", range(3))
def test_correlations_agree_with_scipy_with_and_without_ties(seed):
    rng = random.Random(seed)
    x = [rng.uniform(0, 5) for _ in range(100)]
    y = [v + rng.gauss(0, 1) for v in x]
    assert glue.pearson(x, y) == pytest.approx(pearsonr(x, y)[0])
    assert glue.spearman(x, y) == pytest.approx(spearmanr(x, y)[0])
    tied_x, tied_y = [round(v) for v in x], [round(v) for v in y]  # rounded scores: many ties
    assert glue.spearman(tied_x, tied_y) == pytest.approx(spearmanr(tied_x, tied_y)[0])
    assert glue.average_ranks([10, 20, 20, 5]) == [2, 3.5, 3.5, 1]
    with pytest.raises(ValueError, match="constant"):
        glue.pearson([1, 2, 3], [4, 4, 4])


def test_the_glue_score_reproduces_the_published_rows():
    for name, results in [("human baseline", glue.HUMAN), ("BERT-large", glue.BERT_LARGE)]:
        assert abs(glue.glue_score(results) - glue.PUBLISHED_SCORES[name]) <= 0.1  # inputs have one decimal
    assert glue.glue_score({"A": 50, "B": (70.0, 90.0)}) == 65.0
    with pytest.raises(ValueError):
        glue.glue_score({})


def test_human_normalised_divides_metric_by_metric_and_names_a_missing_task():
    ratios = glue.human_normalised(glue.BERT_LARGE, glue.HUMAN)
    assert ratios["CoLA"] == pytest.approx(60.5 / 66.4)
    assert ratios["MRPC"] == pytest.approx((89.3 / 86.3, 85.4 / 80.8))
    with pytest.raises(ValueError, match="SuperTask"):
        glue.human_normalised({"SuperTask": 1.0}, glue.HUMAN)
