"""The completion line of a test cell: printed by `bertlab.grading.checks.passed`, checked by
`bertlab.grading.preprocessors.VerifyTestsRan`. Kept apart from `checks` so that nbgrader's process does not
import torch."""

from __future__ import annotations

import hashlib
import hmac

KEY_VARIABLE = "BERTLAB_GRADING_KEY"  # set by the autograder (bertlab.grading.preprocessors.ArmTests)
MARK = "[autograder]"  # a signed completion line starts with this


def signature(grade_id: str, key: str) -> str:
    """The completion signature of one test cell under one autograding key."""
    return hmac.new(key.encode(), grade_id.encode(), hashlib.sha256).hexdigest()[:24]
