"""Every metric of the course, each proven against its reference implementation.

One file per kind of metric; all are imported here, so ``from coursekit import evals`` gives them all:

* ``evals.text``: ``bleu`` (equals sacrebleu), ``rouge``, ``meteor``, ``bertscore``, ``exact_match``, ``token_f1``.
* ``evals.diversity``: ``distinct_n`` and ``repetition_rate``, how varied sampled generations are.
* ``evals.lm``: ``perplexity`` and ``multiple_choice_accuracy`` (HellaSwag-style), from a model's logits.
* ``evals.answers``: a chat model's answers to held-out prompts, generated (``generate_answers``,
  ``answer_accuracy``) or scored in one forward pass (``score_answers``).
* ``evals.price``: ``parse_price`` and ``price_mae``, the price task of lesson 05.

A worked example::

    >>> round(bleu(["the cat sat on the mat"], ["the cat sat on the mat"]), 2)
    100.0
    >>> exact_match(["The answer is 4."], ["the answer is 4"])
    1.0
"""

from coursekit.evals.answers import answer_accuracy, generate_answers, score_answers
from coursekit.evals.checks import check_pairs, check_texts
from coursekit.evals.diversity import distinct_n, ngrams, repetition_rate
from coursekit.evals.lm import completion_losses, multiple_choice_accuracy, perplexity
from coursekit.evals.price import parse_price, price_mae
from coursekit.evals.text import (ROUGE_KEYS, BLEUStats, UnicodeTokenizer, bert_scorer, bertscore, bleu, bleu_stats,
                                  exact_match, meteor, normalize_answer, rouge, token_f1, tokenize_13a)

__all__ = [
    "distinct_n", "ngrams", "repetition_rate",
    "answer_accuracy", "generate_answers", "parse_price", "price_mae", "score_answers",
    "ROUGE_KEYS", "BLEUStats", "UnicodeTokenizer", "bert_scorer", "bertscore", "bleu", "bleu_stats", "check_pairs",
    "check_texts", "completion_losses", "exact_match", "meteor", "multiple_choice_accuracy", "normalize_answer",
    "perplexity", "rouge", "token_f1", "tokenize_13a",
]
