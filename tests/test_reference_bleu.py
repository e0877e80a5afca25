"""sacrebleu's own test suite (test/test_bleu.py), ported as vectors: the course's bleu meets its numbers.

Vectors: tests/vectors/sacrebleu/ (Apache-2.0; source and what was ported in NOTICE there).
"""

import json
from pathlib import Path

import pytest

from coursekit import evals

CASES = json.loads((Path(__file__).parent / "vectors" / "sacrebleu" / "test_bleu_cases.json").read_text())
EPS = CASES["epsilon"]


def _by_segment(streams):
    """sacrebleu takes one list per reference stream; the course takes the references of each segment."""
    return [list(refs) for refs in zip(*streams)]


def _hyps(case):
    return CASES["readme_hyps"] if case["hyps"] == "readme" else case["hyps"]


@pytest.mark.parametrize("case", CASES["corpus_bleu"], ids=lambda c: json.dumps(c["kwargs"]) + str(c["hyps"])[:8])
def test_corpus_bleu(case):
    kwargs = dict(case["kwargs"])
    if "smooth_method" in kwargs:
        kwargs["smooth"] = kwargs.pop("smooth_method")
    got = evals.bleu(list(_hyps(case)), _by_segment(CASES["readme_refs"]), **kwargs)
    assert abs(got - case["score"]) < EPS, (got, case["score"])


@pytest.mark.parametrize("case", CASES["corpus_bleu_unsupported"], ids=lambda c: c["kwargs"]["tokenize"])
def test_unsupported_tokenizers_are_refused_by_name(case):
    with pytest.raises(ValueError, match=f"tokenize='{case['kwargs']['tokenize']}': only sacrebleu's default '13a'"):
        evals.bleu(list(_hyps(case)), _by_segment(CASES["readme_refs"]), **case["kwargs"])


@pytest.mark.parametrize("case", CASES["statistics"])
def test_statistics(case):
    st = evals.bleu_stats([case["hyp"]], [case["ref"]])
    assert (st.correct, st.total) == (case["correct"], case["total"]), st


@pytest.mark.parametrize("case", CASES["scoring"])
def test_scoring(case):
    st = evals.BLEUStats(case["correct"], case["total"], case["sys_len"], case["ref_len"])
    got = evals.bleu_from_stats(st, smooth="none") / 100  # sacrebleu.compute_bleu's default is 'none'
    assert abs(got - case["score"]) < EPS, (got, case["score"])


@pytest.mark.parametrize("case", CASES["offset"])
def test_floor_offset(case):
    with_default = evals.bleu([case["hyp"]], [case["ref"]], smooth="floor") / 100  # smooth_value 0.1
    without = evals.bleu([case["hyp"]], [case["ref"]], smooth="floor", smooth_value=0.0) / 100
    assert abs(with_default - case["floor_default"]) < EPS, (with_default, case["floor_default"])
    assert abs(without - case["floor_zero"]) < EPS, (without, case["floor_zero"])


@pytest.mark.parametrize("case", CASES["degenerate_floor"])
def test_degenerate_statistics(case):
    st = evals.BLEUStats(case["correct"], case["total"], case["sys_len"], case["ref_len"])
    got = evals.bleu_from_stats(st, smooth="floor", smooth_value=case["floor"]) / 100
    assert got == case["score"], (got, case)
