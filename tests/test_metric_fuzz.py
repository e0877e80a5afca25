"""Each from-scratch metric against its installed reference library, on generated text (hypothesis).

BLEU: sacrebleu.corpus_bleu, every smoothing method, one or two references per segment. ROUGE: rouge-score,
with score_multi for several references. METEOR: NLTK with its WordNet stage switched off. (SQuAD's script
is not an installed library: tests/test_reference_squad.py holds its vectors.)
"""

import pytest
import sacrebleu
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer

from coursekit import evals

# words, punctuation the 13a tokenizer splits, digits with separators, and a trailing "-" + newline
WORD = st.sampled_from(["the", "cat", "dog", "sat", "ran", "on", "a", "mat", "big", "3.5", "1,000", "well-known", "-", ",", ".", "!", "?", "(", ")", '"', "'", "&", "<", "-\n"])
TEXT = st.lists(WORD, min_size=0, max_size=12).map(" ".join)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.lists(st.tuples(TEXT, TEXT, TEXT), min_size=1, max_size=4),
       st.sampled_from([("exp", None), ("none", None), ("floor", None), ("floor", 0.3), ("add-k", None)]),
       st.booleans())
def test_bleu_equals_sacrebleu(rows, smoothing, two_refs):
    preds = [p for p, _, _ in rows]
    streams = [[r for _, r, _ in rows]] + ([[r for _, _, r in rows]] if two_refs else [])
    refs = [list(seg) for seg in zip(*streams)]
    smooth, value = smoothing
    ours = evals.bleu(preds, refs, smooth=smooth, smooth_value=value)
    theirs = sacrebleu.corpus_bleu(preds, streams, smooth_method=smooth, smooth_value=value).score
    assert ours == pytest.approx(theirs, abs=1e-9), (preds, refs, smoothing, ours, theirs)


SCORER = rouge_scorer.RougeScorer(list(evals.ROUGE_KEYS), use_stemmer=True)


@FUZZ
@given(st.lists(st.tuples(TEXT, st.lists(TEXT, min_size=1, max_size=3)), min_size=1, max_size=4))
def test_rouge_equals_rouge_score(rows):
    preds, refs = [p for p, _ in rows], [r for _, r in rows]
    ours = evals.rouge(preds, refs)
    want = [SCORER.score_multi(r, p) for p, r in rows]
    for k in evals.ROUGE_KEYS:
        theirs = sum(w[k].fmeasure for w in want) / len(rows)
        assert ours[k] == pytest.approx(theirs, abs=1e-12), (k, rows, ours[k], theirs)


class _NoWordNet:  # NLTK's synonym stage, switched off
    @staticmethod
    def synsets(*args, **kwargs):
        return []


@FUZZ
@given(TEXT, st.lists(TEXT, min_size=1, max_size=3))
def test_meteor_equals_nltk_without_synonyms(pred, refs):
    from nltk.translate.meteor_score import meteor_score

    pred_toks, ref_toks = pred.lower().split(), [r.lower().split() for r in refs]
    if not pred_toks or not all(ref_toks):  # NLTK divides by zero on an empty side; ours scores it 0
        assert evals.meteor([pred], [refs]) == max(
            (meteor_score([r], pred_toks, wordnet=_NoWordNet) for r in ref_toks if r and pred_toks), default=0.0)
        return
    theirs = meteor_score(ref_toks, pred_toks, wordnet=_NoWordNet)
    assert evals.meteor([pred], [refs]) == pytest.approx(theirs, abs=1e-9), (pred, refs, theirs)
