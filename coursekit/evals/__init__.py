"""Every metric of the course, each proven against its reference implementation.

One file per kind of metric; all are imported here, so ``from coursekit import evals`` gives them all:

* ``evals.bleu_metric``: ``bleu`` (equals sacrebleu's ``corpus_bleu``), ``bleu_stats``, ``bleu_from_stats``.
* ``evals.rouge_metric``: ``rouge`` (equals rouge-score), with ``MAX_LCS_CELLS``, its memory limit.
* ``evals.overlap``: ``exact_match``, ``token_f1`` (the SQuAD v1.1 script's), ``normalize_answer``.
* ``evals.text``: ``meteor``, ``bertscore``, and every text metric above under its old name.
* ``evals.diversity``: ``distinct_n`` and ``repetition_rate``, how varied sampled generations are.
* ``evals.lm``: ``perplexity`` and ``multiple_choice_accuracy`` (HellaSwag-style), from a model's logits.
* ``evals.answers``: a chat model's answers to held-out prompts, generated (``generate_answers``,
  ``answer_accuracy``) or scored in one forward pass (``score_answers``).
* ``evals.price``: ``parse_price`` and ``price_mae``, the price task of lesson 05.
* ``evals.noise``: ``compare_seeds``, whether two settings differ by more than the random seed's noise (a t-test).

A reference is a string or a list of gold strings (the best one counts). A worked example::

    >>> round(bleu(["the cat sat on the mat"], ["the cat sat on the mat"]), 2)
    100.0
    >>> exact_match(["The answer is 4."], ["the answer is 4"])
    1.0
"""

from coursekit.evals.answers import answer_accuracy, generate_answers, score_answers
from coursekit.evals.bleu_metric import SMOOTH_DEFAULTS, bleu_from_stats
from coursekit.evals.checks import check_pairs, check_texts, reference_lists
from coursekit.evals.diversity import distinct_n, ngrams, repetition_rate
from coursekit.evals.noise import MIN_SEEDS, SeedComparison, compare_seeds
from coursekit.evals.lm import (
                                  completion_losses,
                                  model_context,
                                  multiple_choice_accuracy,
                                  perplexity,
)
from coursekit.evals.price import parse_price, price_mae
from coursekit.evals.rouge_metric import MAX_LCS_CELLS
from coursekit.evals.text import (
                                  ROUGE_KEYS,
                                  BLEUStats,
                                  UnicodeTokenizer,
                                  bert_scorer,
                                  bertscore,
                                  bleu,
                                  bleu_stats,
                                  exact_match,
                                  meteor,
                                  normalize_answer,
                                  rouge,
                                  token_f1,
                                  tokenize_13a,
)

__all__ = [
                                  "MAX_LCS_CELLS",
                                  "ROUGE_KEYS",
                                  "SMOOTH_DEFAULTS",
                                  "BLEUStats",
                                  "MIN_SEEDS",
                                  "UnicodeTokenizer",
                                  "answer_accuracy",
                                  "bert_scorer",
                                  "bertscore",
                                  "bleu",
                                  "bleu_from_stats",
                                  "bleu_stats",
                                  "check_pairs",
                                  "check_texts",
                                  "compare_seeds",
                                  "completion_losses",
                                  "distinct_n",
                                  "exact_match",
                                  "generate_answers",
                                  "meteor",
                                  "model_context",
                                  "multiple_choice_accuracy",
                                  "ngrams",
                                  "normalize_answer",
                                  "parse_price",
                                  "perplexity",
                                  "price_mae",
                                  "reference_lists",
                                  "repetition_rate",
                                  "rouge",
                                  "score_answers",
                                  "SeedComparison",
                                  "token_f1",
                                  "tokenize_13a",
]
