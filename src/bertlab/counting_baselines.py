"""Classical methods that need no BERT: what counting characters gets on each fine-tuning task.

    sentiment  logistic regression on bag-of-characters counts            bag_of_characters
    pair       logistic regression on which characters A and B share      shared_characters
    pos        each character's most frequent tag in the training data    tag_lookup

A pretrained model has to beat these to show what pretraining adds. Each method with a regularisation strength
takes ``C``; `tuned_baseline` chooses it on the validation split, as the fine-tuned models choose their
learning rate, so that neither side gets a tuning the other lacks.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)  # inverse regularisation strengths tried on validation


def bag_of_characters(train: Any, test: Any, C: float = 1.0) -> float:  # noqa: N803 (scikit-learn's name)
    """Sentiment: test accuracy of a logistic regression on bag-of-characters counts (no word order).

    Chapter: book/finetuning.md
    """
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = CountVectorizer(analyzer="char", lowercase=False)
    classifier = LogisticRegression(C=C, max_iter=3000).fit(vectorizer.fit_transform(train["text"]), train["label"])
    return float(classifier.score(vectorizer.transform(test["text"]), test["label"]))


def shared_characters(train: Any, test: Any, C: float = 1.0) -> float:  # noqa: N803
    """Sentence pairs: logistic regression on which characters the two sentences share, and how many.

    Chapter: book/finetuning.md
    """
    import numpy as np
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = CountVectorizer(analyzer="char", lowercase=False, binary=True)
    vectorizer.fit(list(train["text_a"]) + list(train["text_b"]))

    def features(rows: Any) -> Any:
        shared = vectorizer.transform(rows["text_a"]).multiply(vectorizer.transform(rows["text_b"]))
        overlap = np.asarray(shared.sum(axis=1), dtype=float)
        sizes = np.array([[len(set(a) | set(b))] for a, b in zip(rows["text_a"], rows["text_b"], strict=True)])
        return hstack([shared, csr_matrix(overlap / np.maximum(sizes, 1))]).tocsr()

    classifier = LogisticRegression(C=C, max_iter=3000).fit(features(train), train["label"])
    return float(classifier.score(features(test), test["label"]))


def tag_lookup(train: Any, test: Any) -> float:
    """Part of speech: each character gets the tag it has most often in the training sentences (unseen characters
    the most frequent tag overall); token accuracy. Nothing to tune.

    Chapter: book/finetuning.md
    """
    counts: dict[str, Counter] = defaultdict(Counter)
    for text, labels in zip(train["text"], train["char_labels"], strict=True):
        for char, label in zip(text, labels, strict=True):
            counts[char][label] += 1
    overall = Counter(label for labels in train["char_labels"] for label in labels).most_common(1)[0][0]
    hits = total = 0
    for text, labels in zip(test["text"], test["char_labels"], strict=True):
        for char, label in zip(text, labels, strict=True):
            guess = counts[char].most_common(1)[0][0] if char in counts else overall
            hits, total = hits + (guess == label), total + 1
    return hits / total


METHODS = {"sentiment": bag_of_characters, "pair": shared_characters, "pos": tag_lookup}


def tuned_baseline(task: str, train: Any, validation: Any, test: Any) -> dict[str, Any]:
    """The task's counting method with C chosen on ``validation`` from C_GRID (a tie goes to the stronger
    regularisation); its validation and test accuracy. tag_lookup has no C."""
    method = METHODS[task]
    if method is tag_lookup:
        return {"C": None, "validation": tag_lookup(train, validation), "test": tag_lookup(train, test)}
    scores = {C: method(train, validation, C=C) for C in C_GRID}
    best = max(C_GRID, key=lambda C: (scores[C], -C))
    return {"C": best, "validation": scores[best], "test": method(train, test, C=best)}
