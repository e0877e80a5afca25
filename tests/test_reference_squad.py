"""The SQuAD v1.1 scoring script's semantics, as vectors: exact_match and token_f1 follow v1.1.

Vectors: tests/vectors/squad/ (Apache-2.0; source and how the numbers were obtained in NOTICE there).
"""

import json
from pathlib import Path

import pytest

from coursekit import evals

CASES = json.loads((Path(__file__).parent / "vectors" / "squad" / "squad_v1_1_cases.json").read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: repr(c["prediction"])[:24])
def test_squad_v1_1_case(case):
    em = evals.exact_match([case["prediction"]], [case["answers"]])
    f1 = evals.token_f1([case["prediction"]], [case["answers"]])
    assert em == case["em"], (case, em)
    assert f1 == pytest.approx(case["f1"], abs=1e-12), (case, f1)


def test_corpus_scores_are_the_mean_of_the_per_question_scores():
    preds, golds = [c["prediction"] for c in CASES], [c["answers"] for c in CASES]
    em, f1 = evals.exact_match(preds, golds), evals.token_f1(preds, golds)
    want_em, want_f1 = (sum(c[k] for c in CASES) / len(CASES) for k in ("em", "f1"))
    assert em == pytest.approx(want_em, abs=1e-12) and f1 == pytest.approx(want_f1, abs=1e-12), (em, f1)
