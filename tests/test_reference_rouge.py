"""rouge-score's own test suite (rouge/rouge_scorer_test.py), its inline cases ported as vectors.

Vectors: tests/vectors/rouge_score/ (Apache-2.0; source and what was ported in NOTICE there).
"""

import json
from pathlib import Path

import pytest

from coursekit import evals

CASES = json.loads((Path(__file__).parent / "vectors" / "rouge_score" / "rouge_scorer_cases.json").read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_rouge_scorer_case(case):
    got = evals.rouge([case["prediction"]], [case["target"]])
    keys = evals.ROUGE_KEYS if case["key"] == "*" else [case["key"]]
    for k in keys:
        assert got[k] == pytest.approx(case["fmeasure"], abs=1e-9), (case["name"], k, got[k], case["fmeasure"])
