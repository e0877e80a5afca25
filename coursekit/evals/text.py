"""Metrics that compare generated text with references: BLEU, ROUGE, METEOR, BERTScore, exact match, F1.

* ``bleu``: corpus BLEU from scratch; equals ``sacrebleu.corpus_bleu`` (13a tokens, exp smoothing).
* ``rouge``: rouge-score's F-measures with the stemmer, Unicode-safe.
* ``meteor``: exact + stemmed unigram matching with the fragmentation penalty (no WordNet).
* ``bertscore``: bert-score with one cached scorer per model.
* ``exact_match`` / ``token_f1``: SQuAD-style.

    >>> round(bleu(["the cat sat on the mat"], ["the cat sat on the mat"]), 2)
    100.0
    >>> token_f1(["The cat sat."], ["a cat sat down"])
    0.8
"""

from __future__ import annotations

import functools
import math
import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import regex
import torch

from coursekit.assets import minilm_path
from coursekit.evals.checks import check_pairs
from coursekit.evals.diversity import ngrams


# ---------------------------------------------------------------- BLEU
_13A = [
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),  # punctuation and symbols
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),  # period/comma unless inside a number
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),  # dash after a digit
]


def tokenize_13a(line: str) -> list[str]:
    """mteval-v13a tokenization (sacrebleu's default), so scores are comparable."""
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    for entity, char in (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">")):
        line = line.replace(entity, char)
    line = f" {line} "
    for pattern, repl in _13A:
        line = pattern.sub(repl, line)
    return line.split()


@dataclass
class BLEUStats:
    correct: list[int]
    total: list[int]
    sys_len: int
    ref_len: int


def bleu_stats(preds: Sequence[str], refs: Sequence[str | Sequence[str]], max_n: int = 4) -> BLEUStats:
    """Clipped n-gram matches and totals, summed over the corpus."""
    stats = BLEUStats([0] * max_n, [0] * max_n, 0, 0)
    for pred, ref in zip(preds, refs):
        hyp = tokenize_13a(pred)
        ref_toks = [tokenize_13a(r) for r in ([ref] if isinstance(ref, str) else ref)]
        stats.sys_len += len(hyp)
        stats.ref_len += min((abs(len(r) - len(hyp)), len(r)) for r in ref_toks)[1]  # closest, shorter on ties
        for n in range(1, max_n + 1):
            counts = Counter(ngrams(hyp, n))
            best = Counter()
            for r in ref_toks:
                best |= Counter(ngrams(r, n))  # max count over references
            stats.correct[n - 1] += sum(min(c, best[g]) for g, c in counts.items())  # clipped
            stats.total[n - 1] += max(0, len(hyp) - n + 1)
    return stats


def bleu(preds: Sequence[str], refs: Sequence[str | Sequence[str]], smooth: str = "exp", max_n: int = 4) -> float:
    """Corpus BLEU in 0-100: geometric mean of clipped n-gram precisions × brevity penalty.

    ``smooth="exp"`` (sacrebleu's default) halves the stand-in precision for each
    successive order with no match; ``"none"`` leaves zero precisions at zero.
    """
    check_pairs(preds, refs)
    st = bleu_stats(preds, refs, max_n)
    if not any(st.correct):
        return 0.0
    bp = 1.0 if st.sys_len >= st.ref_len else (math.exp(1 - st.ref_len / st.sys_len) if st.sys_len else 0.0)
    log_sum, halve = 0.0, 1.0
    for correct, total in zip(st.correct, st.total):
        if total == 0:  # hypotheses shorter than n: that precision is 0, and so is BLEU
            return 0.0
        if correct == 0 and smooth == "exp":
            halve *= 2
            p = 100.0 / (halve * total)
        else:
            p = 100.0 * correct / total
        if p == 0:
            return 0.0
        log_sum += math.log(p)
    return bp * math.exp(log_sum / max_n)


# ---------------------------------------------------------------- ROUGE
class UnicodeTokenizer:
    """rouge-score's default tokenizer keeps only [a-z0-9], so Chinese or accented text
    would vanish. This one keeps every letter, splits CJK into characters, and
    Porter-stems ASCII words longer than 3 letters, as the default does."""

    _word = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}]|[^\W_]+")

    def __init__(self, use_stemmer: bool = True) -> None:
        from nltk.stem import porter

        self.stemmer = porter.PorterStemmer() if use_stemmer else None

    def tokenize(self, text: str) -> list[str]:
        tokens = self._word.findall(text.lower())
        if self.stemmer is None:
            return tokens
        return [self.stemmer.stem(t) if len(t) > 3 and t.isascii() else t for t in tokens]


ROUGE_KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def rouge(preds: Sequence[str], refs: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1/2/L/Lsum F-measures (rouge-score, with stemming).

    ASCII text goes through rouge-score's own tokenizer, so results equal the
    library's; any non-ASCII text switches to ``UnicodeTokenizer`` instead.
    """
    check_pairs(preds, refs)
    from rouge_score import rouge_scorer

    ascii_only = all(s.isascii() for s in (*preds, *refs))
    tok = None if ascii_only else UnicodeTokenizer()
    scorer = rouge_scorer.RougeScorer(list(ROUGE_KEYS), use_stemmer=True, tokenizer=tok)
    sums = dict.fromkeys(ROUGE_KEYS, 0.0)
    for pred, ref in zip(preds, refs):
        scores = scorer.score(ref, pred)
        for k in ROUGE_KEYS:
            sums[k] += scores[k].fmeasure
    return {k: v / len(preds) for k, v in sums.items()}


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
    chunks = 1 + sum(1 for (h1, r1), (h2, r2) in zip(pairs, pairs[1:]) if not (h2 == h1 + 1 and r2 == r1 + 1))
    p, r = m / len(pred), m / len(ref)
    fmean = p * r / (alpha * p + (1 - alpha) * r)
    return fmean * (1 - gamma * (chunks / m) ** beta)


def meteor(preds: Sequence[str], refs: Sequence[str]) -> float:
    """Mean METEOR: exact then stemmed unigram matches, F-mean weighted to recall, and a
    fragmentation penalty 0.5·(chunks/matches)³.

    NLTK's METEOR also matches WordNet synonyms; that needs a corpus download,
    so it is left out here: scores equal NLTK's with synonyms switched off.
    """
    check_pairs(preds, refs)
    from nltk.stem.porter import PorterStemmer

    stem = PorterStemmer().stem
    return sum(_meteor_one(p.lower().split(), r.lower().split(), stem) for p, r in zip(preds, refs)) / len(preds)


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


# ---------------------------------------------------------------- SQuAD-style
_NO_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(s: str) -> str:
    """Lower-case, drop punctuation and articles, squeeze spaces (SQuAD v1.1)."""
    s = s.lower().translate(_NO_PUNCTUATION)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def exact_match(preds: Sequence[str], refs: Sequence[str]) -> float:
    """Fraction of predictions equal to their reference after ``normalize_answer``."""
    check_pairs(preds, refs)
    return sum(normalize_answer(p) == normalize_answer(r) for p, r in zip(preds, refs)) / len(preds)


def _f1(pred: str, ref: str) -> float:
    p, r = normalize_answer(pred).split(), normalize_answer(ref).split()
    if not p or not r:
        return float(p == r)
    common = sum((Counter(p) & Counter(r)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def token_f1(preds: Sequence[str], refs: Sequence[str]) -> float:
    """Mean token-overlap F1 after ``normalize_answer`` (SQuAD)."""
    check_pairs(preds, refs)
    return sum(_f1(p, r) for p, r in zip(preds, refs)) / len(preds)
