"""Metrics that compare generated text with references: BLEU, ROUGE, METEOR, BERTScore, exact match, F1.

* ``bleu`` (in ``evals.bleu_metric``): corpus BLEU from scratch; equals ``sacrebleu.corpus_bleu`` (13a tokens).
* ``rouge`` (in ``evals.rouge_metric``): rouge-score's F-measures with the stemmer, Unicode-safe.
* ``meteor``: exact + stemmed unigram matching with the fragmentation penalty (no WordNet).
* ``bertscore``: bert-score with one cached scorer per model.
* ``exact_match`` / ``token_f1`` (in ``evals.overlap``): the SQuAD v1.1 script's.

Every name stays importable from here and from ``coursekit.evals``.

    >>> round(bleu(["the cat sat on the mat"], ["the cat sat on the mat"]), 2)
    100.0
    >>> token_f1(["The cat sat."], ["a cat sat down"])
    0.8
    >>> meteor(["the cat sat"], [["a dog ran", "the cat sat"]]) > 0.9   # best of the references
    True
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from typing import Any

import torch

from coursekit.assets import minilm_path
from coursekit.evals.bleu_metric import (
    BLEUStats,
    bleu,
    bleu_from_stats,
    bleu_stats,
    tokenize_13a,
)
from coursekit.evals.checks import check_pairs, reference_lists
from coursekit.evals.overlap import exact_match, normalize_answer, token_f1
from coursekit.evals.rouge_metric import (
    MAX_LCS_CELLS,
    ROUGE_KEYS,
    UnicodeTokenizer,
    rouge,
)

__all__ = ["MAX_LCS_CELLS", "ROUGE_KEYS", "BLEUStats", "UnicodeTokenizer", "bert_scorer", "bertscore", "bleu",
           "bleu_from_stats", "bleu_stats", "exact_match", "meteor", "normalize_answer", "rouge", "token_f1",
           "tokenize_13a"]


# ---------------------------------------------------------------- METEOR
def _align(hyp: list[tuple[int, str]], ref: list[tuple[int, str]]) -> list[tuple[int, int]]:
    """Match equal words; ties go as in NLTK: the last hypothesis word takes the last free reference slot."""
    slots: dict[str, list[int]] = {}
    for ri, word in ref:
        slots.setdefault(word, []).append(ri)
    return [(hi, slots[word].pop()) for hi, word in reversed(hyp) if slots.get(word)]


def _meteor_one(pred: list[str], ref: list[str], stem: Any, alpha: float = 0.9, beta: float = 3.0,
                gamma: float = 0.5) -> float:
    if not pred or not ref:
        return 0.0
    hyp, rf = list(enumerate(pred)), list(enumerate(ref))
    pairs: list[tuple[int, int]] = []
    for key in (lambda w: w, stem):  # stage 1: exact words; stage 2: Porter stems of the rest
        found = _align([(i, key(w)) for i, w in hyp], [(i, key(w)) for i, w in rf])
        pairs += found
        used_h, used_r = {h for h, _ in found}, {r for _, r in found}
        hyp = [(i, w) for i, w in hyp if i not in used_h]
        rf = [(i, w) for i, w in rf if i not in used_r]
    m = len(pairs)
    if m == 0:
        return 0.0
    pairs.sort()
    chunks = 1 + sum(1 for (h1, r1), (h2, r2) in itertools.pairwise(pairs) if not (h2 == h1 + 1 and r2 == r1 + 1))
    p, r = m / len(pred), m / len(ref)
    fmean = p * r / (alpha * p + (1 - alpha) * r)
    return fmean * (1 - gamma * (chunks / m) ** beta)


def meteor(preds: Sequence[str], refs: Sequence[str | Sequence[str]]) -> float:
    """Mean METEOR: exact then stemmed unigram matches, F-mean weighted to recall, and a
    fragmentation penalty 0.5·(chunks/matches)³. With several references, the best one counts (as NLTK's).

    NLTK's METEOR also matches WordNet synonyms; that needs a corpus download,
    so it is left out here: scores equal NLTK's with synonyms switched off.
    """
    check_pairs(preds, refs)
    from nltk.stem.porter import PorterStemmer

    stem = PorterStemmer().stem
    return sum(max(_meteor_one(p.lower().split(), r.lower().split(), stem) for r in golds)
               for p, golds in zip(preds, reference_lists(refs))) / len(preds)


# ---------------------------------------------------------------- BERTScore
@functools.lru_cache(maxsize=4)
def bert_scorer(model_type: str, num_layers: int) -> Any:
    """One BERTScorer per (model, layer): loading it is the slow part, so it is reused.

    A checkpoint without ``tokenizer_config.json`` (roberta-large's) gets transformers 5's
    "no limit" ``model_max_length`` of ~1e30, which bert-score hands to the Rust tokenizer
    (``OverflowError``); it is capped at the positions the model has.
    """
    from bert_score import BERTScorer

    scorer = BERTScorer(model_type=model_type, num_layers=num_layers)
    config = scorer._model.config
    # RoBERTa-style models reserve the first padding_idx + 1 positions
    offset = config.pad_token_id + 1 if config.model_type in ("roberta", "xlm-roberta", "camembert") else 0
    limit = getattr(config, "max_position_embeddings", 512) - offset
    scorer._tokenizer.model_max_length = min(scorer._tokenizer.model_max_length, limit)
    return scorer


def bertscore(preds: Sequence[str], refs: Sequence[str], model_type: str | None = None,
              num_layers: int | None = None) -> dict[str, Any]:
    """Mean BERTScore precision/recall/F1, with the model and layer used.

    Defaults: the packaged all-MiniLM-L6-v2 (layer 6) offline; pass
    ``model_type="roberta-large", num_layers=17`` for the standard setting.
    """
    check_pairs(preds, refs)
    for i, r in enumerate(refs):
        if not isinstance(r, str):
            raise TypeError(f"bertscore: reference at index {i} is a {type(r).__name__}; it takes one reference "
                            "string per prediction: score each reference separately and keep the best.")
    if model_type is None:
        model_type, num_layers = str(minilm_path()), num_layers or 6
    if num_layers is None:
        from bert_score.utils import model2layers

        num_layers = model2layers[model_type]
    # An empty (or blank) text scores 0, as bert-score itself documents; we set it here because
    # bert-score's own empty-text path calls a tokenizer method that transformers 5 removed.
    p, r, f = (torch.zeros(len(preds)) for _ in range(3))
    keep = [i for i, (a, b) in enumerate(zip(preds, refs)) if a.strip() and b.strip()]
    if keep:
        scored = bert_scorer(model_type, num_layers).score([preds[i] for i in keep], [refs[i] for i in keep])
        for total, part in zip((p, r, f), scored):
            total[keep] = part.float().cpu()
    return {"precision": p.mean().item(), "recall": r.mean().item(), "f1": f.mean().item(),
            "per_pair_f1": f.tolist(), "model": model_type, "layer": num_layers}
