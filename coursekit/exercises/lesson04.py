"""Lesson 04's exercises: where an assistant reply sits in the chat text, padding prompts for generation (on the
left, where training pads on the right), and whether a difference between two settings is more than the noise of
the random seed (the paired t statistic).

Each check runs the student's answer on tiny inputs (a few token ids, a few losses per random seed) and compares it
with the finished copy: ``coursekit.chat.assistant_spans`` for the reply's place, the left padding that
``coursekit.evals`` asks for before ``generate``, and ``coursekit.evals.compare_seeds`` (and scipy's ``ttest_rel``)
for the t statistic. A wrong answer is told which common mistake it matches, with the values.

    >>> q1.check(lambda text, prompt, reply: (text.find(reply), text.find(reply) + len(reply)))   # the first copy
    ✗ q1: reply_span found the reply at characters (78, 82), inside the user's turn: 'start|>user\\nIs 1900 right? '...; it starts at 156, after the prompt (the text up to '<|im_start|>assistant\\n').
      Hint: The reply comes after the prompt: search for it from len(prompt) on, with text.index(reply, len(prompt)).
    >>> q1.check(reply_span)
    ✓ q1: correct. The reply's characters, as coursekit.chat.assistant_spans finds them, on 4 chats (one with Qwen3's think block).
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import torch

from coursekit.chat import CHATML_TEMPLATE, assistant_spans, render_chat
from coursekit.exercises import Exercise, Wrong, expect_close, expect_equal, expect_tensor

__all__ = ["EXERCISES", "left_pad", "paired_t", "q1", "q2", "q3", "reply_span"]


class _ChatML:
    """Just enough of a tokenizer to render ChatML (no files to read): what ``render_chat`` needs."""

    chat_template = CHATML_TEMPLATE
    eos_token = "<|im_end|>"

    def apply_chat_template(self, messages: Any, tokenize: bool = False, add_generation_prompt: bool = False,
                            chat_template: str | None = None, **kwargs: Any) -> str:
        text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")


class _ThinkML(_ChatML):
    """ChatML as Qwen3 renders a past reply: an empty think block before it, which the generation prompt lacks,
    so the prompt is not a prefix of the chat text."""

    def apply_chat_template(self, messages: Any, tokenize: bool = False, add_generation_prompt: bool = False,
                            chat_template: str | None = None, **kwargs: Any) -> str:
        think = "<think>\n\n</think>\n\n"
        text = "".join(f"<|im_start|>{m['role']}\n{think if m['role'] == 'assistant' else ''}{m['content']}"
                       "<|im_end|>\n" for m in messages)
        return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")


SYSTEM = {"role": "system", "content": "Answer with the result only."}
CHATS = [  # the reply also in the user's turn; the reply in a later user turn; a plain one
    [SYSTEM, {"role": "user", "content": "Is 1900 right? Convert 19 meters to centimeters."},
     {"role": "assistant", "content": "1900"}],
    [SYSTEM, {"role": "user", "content": "Convert 2 minutes to seconds."}, {"role": "assistant", "content": "120"},
     {"role": "user", "content": "Why 120 and not 200?"}],
    [SYSTEM, {"role": "user", "content": "Convert 7 hours to minutes."}, {"role": "assistant", "content": "420"}],
]


# ---------------------------------------------------------------- q1: where the reply is
def reply_span(text: str, prompt: str, reply: str) -> tuple[int, int]:
    """(start, end) characters of ``reply`` in ``text``: the first copy after the prompt, never one in a user turn."""
    start = text.index(reply, len(prompt))  # the prompt is everything before the reply: skip it
    return start, start + len(reply)


def _check_span(f: Any) -> str:
    for tok, messages in [*((_ChatML(), m) for m in CHATS), (_ThinkML(), CHATS[0])]:
        i = next(k for k, m in enumerate(messages) if m["role"] == "assistant")
        text = render_chat(tok, messages)
        prompt = render_chat(tok, messages[:i], add_generation_prompt=True)
        want = assistant_spans(tok, messages[: i + 1], text, end_of_turn=False)[0]   # the finished copy
        got = f(text, prompt, messages[i]["content"])
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise Wrong(f"reply_span returned {got!r}; expected a pair (start, end) of character positions.")
        got = (int(got[0]), int(got[1]))
        if got != want and 0 <= got[0] < len(prompt):
            raise Wrong(f"reply_span found the reply at characters {got}, inside the user's turn: "
                        f"{text[max(got[0] - 15, 0):got[0] + 12]!r}...; it starts at {want[0]}, after the prompt "
                        f"(the text up to '<|im_start|>assistant\\n').")
        if got != want and got[0] > want[0]:
            raise Wrong(f"reply_span found the reply at characters {got}, after the reply itself "
                        f"({text[got[0] - 12:got[1]]!r}): that copy is in a later turn; the reply is at {want}.")
        if got != want and isinstance(tok, _ThinkML) and got[0] == len(prompt):
            raise Wrong(f"reply_span returned {got}, the end of the prompt; but this template (Qwen3's) puts "
                        f"{text[len(prompt):want[0]]!r} before the reply, which starts at {want[0]}: search for "
                        "the reply, do not assume it follows the prompt.")
        if got[0] == want[0] and got[1] != want[1]:
            raise Wrong(f"reply_span returned {got}: the start is right, but the end should be start + len(reply) "
                        f"= {want[1]} (Python spans end one past the last character).")
        expect_equal(got, want, f"reply_span on the chat {messages[1]['content']!r}")
    return (f"The reply's characters, as coursekit.chat.assistant_spans finds them, on {len(CHATS) + 1} chats "
            "(one with Qwen3's think block).")


q1 = Exercise(
    "q1", "reply_span(text, prompt, reply): the (start, end) characters of the assistant's reply in the chat text.",
    checker=_check_span,
    hint_text="The reply comes after the prompt: search for it from len(prompt) on, with text.index(reply, "
              "len(prompt)).",
    reference=reply_span,
    wrong=(lambda text, prompt, reply: (text.find(reply), text.find(reply) + len(reply)),
           lambda text, prompt, reply: (text.rfind(reply), text.rfind(reply) + len(reply)),
           lambda text, prompt, reply: (len(prompt), len(prompt) + len(reply)),  # assumes no gap after the prompt
           lambda text, prompt, reply: (text.index(reply, len(prompt)), text.index(reply, len(prompt)) + len(reply)
                                        - 1)),
)


# ---------------------------------------------------------------- q2: padding prompts for generation
def left_pad(prompts: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Prompts of different lengths as one (B, T) batch for ``generate``: padded on the LEFT, so that every row
    ends where its reply starts; the attention mask is 0 on the padding."""
    longest = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), longest), pad_id)               # (B, T)
    mask = torch.zeros((len(prompts), longest), dtype=torch.long)   # (B, T)
    for row, p in enumerate(prompts):
        ids[row, longest - len(p):] = torch.tensor(p)               # the prompt at the right end of its row
        mask[row, longest - len(p):] = 1
    return {"input_ids": ids, "attention_mask": mask}


PAD = 2  # SmolLM2's pad token is its end of turn, <|im_end|> (id 2)
PROMPTS = [[5, 6, 7, 8], [5, 9], [4, 4, 3]]


def _padded(prompts: list[list[int]], pad_id: int, left: bool = True, mask_ones: bool = False) -> dict[str, Any]:
    """Left padding (what ``coursekit.evals`` asks the tokenizer for before ``generate``), by torch's
    ``pad_sequence`` on the reversed rows; the other arguments make the common mistakes."""
    def padded(value: int) -> torch.Tensor:
        rows = [torch.tensor(p[::-1] if left else p) for p in prompts]
        out = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=value)
        return out.flip(-1) if left else out
    mask = (padded(-1) != -1).long()
    return {"input_ids": padded(pad_id), "attention_mask": torch.ones_like(mask) if mask_ones else mask}


def _check_left_pad(f: Any) -> str:
    got, want = f([list(p) for p in PROMPTS], PAD), _padded(PROMPTS, PAD)
    if not isinstance(got, dict) or set(want) - set(got):
        raise Wrong(f"left_pad returned {type(got).__name__} with keys {sorted(got) if isinstance(got, dict) else '-'}"
                    f"; expected a dict with {sorted(want)}.")
    ids = got["input_ids"]
    if isinstance(ids, torch.Tensor) and ids.shape == want["input_ids"].shape:
        if ids.tolist() == _padded(PROMPTS, PAD, left=False)["input_ids"].tolist():
            raise Wrong(f"the short prompt's row is {ids[1].tolist()}: padded on the right, as for training; "
                        f"generate would then continue after the padding. Expected {want['input_ids'][1].tolist()}.")
        if 0 in ids.tolist()[1] and PAD not in ids.tolist()[1]:
            raise Wrong(f"the short prompt's row is {ids[1].tolist()}: padded with 0, not with pad_id = {PAD}.")
    expect_tensor(ids, want["input_ids"], "left_pad(...)['input_ids']", atol=0, rtol=0)
    mask = got["attention_mask"]
    if isinstance(mask, torch.Tensor) and mask.shape == want["attention_mask"].shape and bool((mask == 1).all()):
        raise Wrong(f"the attention mask is all 1 ({mask[1].tolist()} for the short prompt): the model would attend "
                    f"to the padding as if it were text. Expected {want['attention_mask'][1].tolist()}.")
    expect_tensor(mask, want["attention_mask"], "left_pad(...)['attention_mask']", atol=0, rtol=0)
    return "Left padding and its mask, as coursekit.evals pads the prompts it generates from."


q2 = Exercise(
    "q2", "left_pad(prompts, pad_id): prompts (lists of token ids) as one (B, T) batch for generation, padded on "
          "the left, with an attention mask.",
    checker=_check_left_pad,
    hint_text="Put each prompt at the right end of a row of pad_id (row[T - len(p):] = p); the attention mask is 1 "
              "where the prompt is, 0 on the padding.",
    reference=left_pad,
    wrong=(lambda prompts, pad_id: _padded(prompts, pad_id, left=False),
           lambda prompts, pad_id: _padded(prompts, pad_id, mask_ones=True),
           lambda prompts, pad_id: _padded(prompts, 0)),
)


# ---------------------------------------------------------------- q3: is the difference real?
def paired_t(a: list[float], b: list[float]) -> float:
    """The paired t statistic of setting ``b`` against setting ``a``, one value per random seed each (random
    seed i of both together): the mean of the differences d_i = b_i - a_i over its standard error, sd(d) / sqrt(n)."""
    d = [y - x for x, y in zip(a, b)]                               # one gap per random seed
    n = len(d)
    mean = sum(d) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in d) / (n - 1))      # the sample standard deviation (n - 1)
    return mean / (sd / math.sqrt(n))


SEED_RUNS = [  # (a, b): held-out losses per random seed, as section 3's study gives them
    ([1.52, 1.61, 1.47], [1.49, 1.59, 1.43]),                       # the random seeds spread more than the gap
    ([2.31, 2.27, 2.35, 2.30, 2.28], [2.38, 2.31, 2.36, 2.39, 2.33]),
]


def _sd(xs: list[float], ddof: int = 1) -> float:
    mean = sum(xs) / len(xs)
    return math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - ddof))


def _welch_t(a: list[float], b: list[float]) -> float:
    """The unpaired (Welch) t of b against a: the gap of the means over sqrt(var(a)/n_a + var(b)/n_b)."""
    gap = sum(b) / len(b) - sum(a) / len(a)
    return gap / math.sqrt(_sd(a) ** 2 / len(a) + _sd(b) ** 2 / len(b))


def _check_paired(f: Any) -> str:
    from scipy import stats

    from coursekit.evals import compare_seeds

    for a, b in SEED_RUNS:
        want = compare_seeds(a, b, paired=True).t                    # the finished copy, as notebook 04 calls it
        scipy_t = float(stats.ttest_rel(b, a).statistic)             # scipy's paired t-test: the same t
        call = f"paired_t({a}, {b})"
        got = f(list(a), list(b))
        try:
            value = float(got)
        except (TypeError, ValueError):
            raise Wrong(f"{call} returned {got!r}; expected a number, the t statistic {want:.4g}.") from None
        n, d = len(a), [y - x for x, y in zip(a, b)]
        mistakes = {
            f"that is Welch's unpaired t. It ignores that random seed i of both settings shares its data order, "
            f"so the seeds' own spread ({_sd(a):.3g} within a) hides a gap that is steady from one random seed to "
            f"the next (sd(d) = {_sd(d):.3g}).": _welch_t(a, b),
            f"the standard deviation divides by n = {n}; the sample one divides by n - 1 = {n - 1}, which makes the "
            f"standard error larger by sqrt(n / (n - 1)) = {math.sqrt(n / (n - 1)):.3g} and |t| smaller.":
                want * math.sqrt(n / (n - 1)),
            f"you divided the mean gap by sd(d) alone; its standard error is sd(d) / sqrt(n), with n = {n} random "
            "seeds.": want / math.sqrt(n),
            "the sign is flipped: that is a against b (a_i - b_i). The t of b against a is positive when b is the "
            "higher.": -want,
        }
        for what, wrong in mistakes.items():
            if math.isclose(value, wrong, rel_tol=1e-4) and not math.isclose(value, want, rel_tol=1e-4):
                raise Wrong(f"{call} is {value:.4g}; expected {want:.4g}: {what}")
        expect_close(value, want, f"{call} (against compare_seeds)", rel=1e-4)         # float32 answers pass too
        expect_close(value, scipy_t, f"{call} (against scipy.stats.ttest_rel)", rel=1e-4)
    a, b = SEED_RUNS[0]
    c = compare_seeds(a, b, paired=True)
    return (f"Equal to compare_seeds(a, b, paired=True).t and scipy.stats.ttest_rel(b, a). On the 3 random seeds, "
            f"t = {c.t:.2f}, beyond the 95% threshold ±{c.critical:.2f}: compare_seeds calls b {c.verdict}; "
            f"Welch's unpaired t, {_welch_t(a, b):.2f}, would not.")


q3 = Exercise(
    "q3", "paired_t(a, b): the paired t statistic of setting b against setting a, one value per random seed each "
          "(random seed i of both together).",
    checker=_check_paired,
    hint_text="d_i = b_i - a_i for each random seed; t = mean(d) / (sd(d) / sqrt(n)), where sd is the sample "
              "standard deviation (divide the squared deviations by n - 1).",
    reference=paired_t,
    wrong=(_welch_t,
           lambda a, b: statistics.fmean(y - x for x, y in zip(a, b)) / (statistics.pstdev(
               [y - x for x, y in zip(a, b)]) / math.sqrt(len(a))),
           lambda a, b: statistics.fmean(y - x for x, y in zip(a, b)) / statistics.stdev(
               [y - x for x, y in zip(a, b)]),
           lambda a, b: paired_t(b, a)),
)

EXERCISES = [q1, q2, q3]
