"""Evaluation metrics, each proven against its reference implementation.

* ``perplexity``: exp of the token-weighted mean NLL, from the model's own logits.
* ``bleu``: corpus BLEU from scratch; equals ``sacrebleu.corpus_bleu`` (13a tokens, exp smoothing).
* ``rouge``: rouge-score's F-measures with the stemmer, Unicode-safe.
* ``meteor``: exact + stemmed unigram matching with the fragmentation penalty (no WordNet).
* ``bertscore``: bert-score with one cached scorer per model.
* ``exact_match`` / ``token_f1``: SQuAD-style.
* ``multiple_choice_accuracy``: HellaSwag-style lowest length-normalised completion loss.

A worked example::

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
import torch.nn.functional as F

from coursekit.textgen import ngrams


# ---------------------------------------------------------------- input checks
def check_pairs(preds: Sequence[Any], refs: Sequence[Any]) -> None:
    """Raise a ValueError for empty or unequal lists, naming the first non-string element."""
    if len(preds) == 0 or len(refs) == 0:
        raise ValueError(f"Empty input: got {len(preds)} predictions and {len(refs)} references; need at least 1.")
    if len(preds) != len(refs):
        raise ValueError(f"Predictions and references differ in length: {len(preds)} vs {len(refs)}.")
    for name, items in (("prediction", preds), ("reference", refs)):
        for i, item in enumerate(items):
            group = item if isinstance(item, (list, tuple)) and name == "reference" else [item]
            if not group or not all(isinstance(s, str) for s in group):
                raise TypeError(f"{name} at index {i} is {type(item).__name__}, not a string: {item!r:.60}")


def check_texts(texts: Sequence[Any]) -> None:
    if len(texts) == 0:
        raise ValueError("Empty input: need at least one text.")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"text at index {i} is {type(t).__name__}, not a string: {t!r:.60}")


# ---------------------------------------------------------------- perplexity
def _logits(out: Any) -> torch.Tensor:
    """Logits from a transformers output or our GPT2's ``(logits, loss)`` tuple."""
    return out[0] if isinstance(out, tuple) else out.logits


def _token_nll(model: Any, ids: torch.Tensor, mask: torch.Tensor) -> tuple[float, int]:
    """Summed NLL of every predicted token (positions 1..T-1 where the mask is 1), and their count.

    Padding is on the right, so causal attention never lets a real token see it:
    no attention mask is needed, and only the loss must skip it.
    """
    logits = _logits(model(ids))  # (B, T, V)
    B, T, V = logits.shape
    # Flattened to (B·(T-1), V): on CPU, the (B, V, T-1) layout sums the softmax over a strided
    # dimension and loses ~1e-4 relative on a 49k vocabulary; this layout matches float64 to ~1e-6.
    nll = F.cross_entropy(logits[:, :-1].float().reshape(-1, V), ids[:, 1:].reshape(-1),
                          reduction="none").view(B, T - 1)
    keep = mask[:, 1:].bool()
    return nll[keep].sum().item(), int(keep.sum())


@torch.no_grad()
def perplexity(model: Any, tokenizer: Any, texts: Sequence[str], stride: int | None = None,
               batch_size: int = 8, max_length: int | None = None) -> float:
    """exp(token-weighted mean NLL) over ``texts``, each scored whole as the tokenizer encodes it.

    Padding never counts. With ``stride``, texts longer than the context are
    scored with the sliding-window method: each window of ``max_length`` tokens
    moves by ``stride`` and only its new tokens are scored, with the rest as context.
    """
    check_texts(texts)
    device = next(model.parameters()).device
    encoded = [tokenizer(t)["input_ids"] for t in texts]
    if stride is not None:
        ctx = max_length or model.config.max_position_embeddings
        total, count = 0.0, 0
        for ids in encoded:
            s, n = _strided_nll(model, torch.tensor([ids], device=device), ctx, stride)
            total, count = total + s, count + n
        return math.exp(total / count)
    total, count = 0.0, 0
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start:start + batch_size]
        width = max(len(ids) for ids in chunk)
        ids = torch.zeros(len(chunk), width, dtype=torch.long, device=device)
        mask = torch.zeros_like(ids)
        for row, seq in enumerate(chunk):  # right padding: positions are unchanged
            ids[row, :len(seq)] = torch.tensor(seq)
            mask[row, :len(seq)] = 1
        s, n = _token_nll(model, ids, mask)
        total, count = total + s, count + n
    if count == 0:
        raise ValueError("No token to score: every text encodes to fewer than 2 tokens.")
    return math.exp(total / count)


def _strided_nll(model: Any, ids: torch.Tensor, max_length: int, stride: int) -> tuple[float, int]:
    if not 0 < stride <= max_length:
        raise ValueError(f"stride must be in 1..max_length ({max_length}); got {stride}.")
    total, count, scored_to = 0.0, 0, 1  # token 0 has no context, so it is never scored
    T = ids.shape[1]
    for begin in range(0, T, stride):
        end = min(begin + max_length, T)
        window = ids[:, begin:end]
        logits = _logits(model(window))  # (1, W, V)
        nll = F.cross_entropy(logits[0, :-1].float(), window[0, 1:], reduction="none")  # (W-1,)
        # Only targets not scored by an earlier window. With stride == max_length (disjoint windows)
        # a window's first token has no context inside it and is skipped, as in HF's perplexity guide.
        new = nll[max(scored_to - begin - 1, 0):]
        total, count = total + new.sum().item(), count + new.numel()
        scored_to = end
        if end == T:
            break
    return total, count


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
        from coursekit.assets import minilm_path

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


# ---------------------------------------------------------------- multiple choice
def _encode(tokenizer: Any, text: str, special: bool) -> list[int]:
    if hasattr(tokenizer, "n_vocab"):  # tiktoken
        return tokenizer.encode(text)
    return tokenizer(text, add_special_tokens=special)["input_ids"]


@torch.no_grad()
def completion_losses(model: Any, tokenizer: Any, ctx: str, endings: Sequence[str]) -> list[float]:
    """Mean per-token loss of each ending after ``ctx`` (length-normalised)."""
    device = next(model.parameters()).device
    ctx_ids = _encode(tokenizer, ctx, special=True)
    out = []
    for ending in endings:
        end_ids = _encode(tokenizer, " " + ending, special=False)
        ids = torch.tensor([ctx_ids + end_ids], device=device)
        logits = _logits(model(ids))[0, :-1]  # (T-1, V)
        nll = F.cross_entropy(logits.float(), ids[0, 1:], reduction="none")[len(ctx_ids) - 1:]
        out.append(nll.mean().item())
    return out


def multiple_choice_accuracy(model: Any, tokenizer: Any, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """HellaSwag-style accuracy: pick the ending with the lowest mean token loss.

    ``items`` are dicts with ``ctx``, ``endings`` and ``label`` (HellaSwag's format).
    Works with transformers models and with ``coursekit.gpt2.GPT2``.
    """
    if len(items) == 0:
        raise ValueError("Empty input: need at least one multiple-choice item.")
    preds = []
    for i, item in enumerate(items):
        missing = [k for k in ("ctx", "endings", "label") if k not in item]
        if missing:
            raise ValueError(f"item at index {i} lacks {missing}: each needs ctx, endings and label.")
        losses = completion_losses(model, tokenizer, item["ctx"], item["endings"])
        preds.append(min(range(len(losses)), key=losses.__getitem__))
    correct = [p == int(it["label"]) for p, it in zip(preds, items)]
    return {"accuracy": sum(correct) / len(items), "predictions": preds}
