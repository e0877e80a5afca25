"""Preference pairs: rows of (prompt, chosen, rejected), checked in TRL's formats, and seeded pairs whose
preference is known.

TRL 1.16's ``DPOTrainer`` and ``RewardTrainer`` take a *paired preference* dataset in one of four forms:

* **standard, explicit prompt**: ``{"prompt": str, "chosen": str, "rejected": str}``;
* **conversational, explicit prompt**: the same keys, each a list of ``{"role", "content"}`` messages;
* **implicit prompt** (either style): only ``chosen`` and ``rejected``, each holding the prompt too; TRL's
  ``extract_prompt`` cuts their longest shared start off as the prompt.

``check_preference_rows`` names the form, or says in one line which row and field is wrong and how to fix
it. ``arithmetic_preference_rows`` builds pairs from ``coursekit.data.arithmetic_rows``: the computed (so
right) answer is chosen, a wrong or a verbose one rejected::

    >>> rows = arithmetic_preference_rows(2, seed=0)
    >>> rows[0]["prompt"][-1]["content"], rows[0]["chosen"][0]["content"], rows[0]["rejected"][0]["content"]
    ('What is 99 + 55?', '154', '156')
    >>> check_preference_rows(rows)
    PreferenceFormat(style='conversational', prompt='explicit')
    >>> check_preference_rows([{"prompt": "2+2=", "chosen": "4", "rejected": ""}])
    Traceback (most recent call last):
    ...
    coursekit.chat.DataError: row 0: field 'rejected' is empty; give the worse answer, or drop the row
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from coursekit.chat import DataError
from coursekit.data import SYSTEM_PROMPT, arithmetic_rows

PAIR_FIELDS = ("chosen", "rejected")
MESSAGE_ROLES = ("system", "user", "assistant", "tool")  # what TRL's chat templates render
REJECTED_KINDS = ("wrong", "verbose", "mixed")
# Fields of TRL's other dataset types, to name the type a row is instead of saying only what it lacks
OTHER_TYPES = {
    "label": "TRL's unpaired preference form (KTOTrainer's prompt/completion/label); DPO and reward "
             "training need paired 'chosen' and 'rejected'",
    "messages": "an SFT row (language modeling); a preference row needs 'chosen' and 'rejected'",
    "completion": "a prompt-completion (SFT) row; a preference row needs 'chosen' and 'rejected'",
}


class PreferenceFormat(NamedTuple):
    """Which of TRL's paired-preference forms a dataset is in."""

    style: str   # "standard" (strings) or "conversational" (lists of messages)
    prompt: str  # "explicit" (a prompt field) or "implicit" (the prompt is chosen's and rejected's shared start)


# ---------------------------------------------------------------- one field
def _style_of(value: Any, index: int, name: str) -> str:
    """'standard' for a string, 'conversational' for a list of messages; anything else is refused by name."""
    if isinstance(value, str):
        return "standard"
    if isinstance(value, list):
        return "conversational"
    raise DataError(index, name, f"field {name!r} must be a string or a list of {{role, content}} messages, "
                                 f"got {type(value).__name__}")


def _check_messages(messages: list[Any], index: int, name: str) -> None:
    """Each message a dict with a known role and string content (what a chat template can render)."""
    for j, msg in enumerate(messages):
        where = f"{name}[{j}]"
        if not isinstance(msg, Mapping) or "role" not in msg or "content" not in msg:
            raise DataError(index, where, f"field {where!r} must be a dict with 'role' and 'content', got {msg!r}")
        if msg["role"] not in MESSAGE_ROLES:
            raise DataError(index, f"{where}.role", f"field '{where}.role' is {msg['role']!r}; "
                                                    f"valid roles: {', '.join(MESSAGE_ROLES)}")
        if not isinstance(msg["content"], str):
            raise DataError(index, f"{where}.content", f"field '{where}.content' must be a string, "
                                                       f"got {type(msg['content']).__name__}")


def _is_empty(value: str | list[Any]) -> bool:
    """A blank string, no messages, or messages whose contents are all blank: nothing to score."""
    if isinstance(value, str):
        return not value.strip()
    return not value or all(not m["content"].strip() for m in value)


def _shared_start(a: str | list[Any], b: str | list[Any]) -> int:
    """How many leading characters (or messages) a and b share: TRL's ``extract_prompt`` cuts there."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


# ---------------------------------------------------------------- one row
def _check_row(row: Any, index: int) -> PreferenceFormat:
    # 1. A row is a dict that has both pair fields; name TRL's other dataset types when it is one of them
    if not isinstance(row, Mapping):
        raise DataError(index, "row", f"a preference row must be a dict with 'chosen' and 'rejected', "
                                      f"got {type(row).__name__}")
    for name in PAIR_FIELDS:
        if name not in row:
            other = next((why for key, why in OTHER_TYPES.items() if key in row), None)
            fix = f"it looks like {other}" if other else f"add the {'better' if name == 'chosen' else 'worse'} answer"
            raise DataError(index, name, f"field {name!r} is missing; {fix}")
    # 2. Each present field is a string or a list of messages, and all of them the same style
    names = ["prompt", *PAIR_FIELDS] if "prompt" in row else list(PAIR_FIELDS)
    styles = {name: _style_of(row[name], index, name) for name in names}
    for name in names:
        if styles[name] == "conversational":
            _check_messages(row[name], index, name)
    if len(set(styles.values())) > 1:
        listed = ", ".join(f"{n!r} is {'a string' if s == 'standard' else 'a list of messages'}"
                           for n, s in styles.items())
        odd = next(n for n in names if styles[n] != styles["chosen"])
        raise DataError(index, odd, f"fields mix styles ({listed}); make them all strings or all messages")
    # 3. Nothing empty: an empty answer (or prompt) gives the loss nothing to compare
    for name in names:
        if _is_empty(row[name]):
            fix = ("give the prompt, or drop the field for the implicit-prompt form" if name == "prompt" else
                   f"give the {'better' if name == 'chosen' else 'worse'} answer, or drop the row")
            raise DataError(index, name, f"field {name!r} is empty; {fix}")
    # 4. The two answers differ: an equal pair teaches no preference (its DPO loss is log 2 whatever the model)
    if row["chosen"] == row["rejected"]:
        raise DataError(index, "rejected", "field 'rejected' equals 'chosen', so the pair teaches no preference; "
                                           "make 'rejected' a worse answer, or drop the row")
    style = styles["chosen"]
    if "prompt" in row:
        return PreferenceFormat(style, "explicit")
    # 5. Implicit prompt: the shared start is the prompt, so there must be one, and each answer must go past it
    shared = _shared_start(row["chosen"], row["rejected"])
    if shared == 0:
        raise DataError(index, "prompt", "no 'prompt' field, and 'chosen' and 'rejected' share no start to take "
                                         "as the prompt; add a 'prompt' field")
    for name in PAIR_FIELDS:
        if _is_empty(row[name][shared:]):
            raise DataError(index, name, f"field {name!r} has nothing after the start it shares with the other "
                                         "answer (the implicit prompt), so nothing of it is left to score; "
                                         "add a 'prompt' field")
    return PreferenceFormat(style, "implicit")


def check_preference_rows(rows: Sequence[Mapping[str, Any]]) -> PreferenceFormat:
    """The form of a paired-preference dataset, after checking every row; a ``DataError`` (a ``ValueError``)
    names the first bad row's index and field, and the fix.

    TRL reads the form off the first row, so every row must share it. Other columns (``margin`` for the
    reward model, scores, ids) are allowed and not checked.

    >>> check_preference_rows([{"chosen": "Q: 2+2? A: 4", "rejected": "Q: 2+2? A: 5"}])
    PreferenceFormat(style='standard', prompt='implicit')
    >>> check_preference_rows([{"prompt": "2+2=", "chosen": "4", "rejected": "4"}])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    coursekit.chat.DataError: row 0: field 'rejected' equals 'chosen', so the pair teaches no preference; ...
    """
    if isinstance(rows, Mapping) or not len(rows):
        raise ValueError("check_preference_rows takes a non-empty list of rows (dicts with 'chosen' and 'rejected')"
                         + ("; got one dict: wrap it in a list" if isinstance(rows, Mapping) else ""))
    first = _check_row(rows[0], 0)
    for index in range(1, len(rows)):
        form = _check_row(rows[index], index)
        if form != first:
            field = "prompt" if form.style == first.style else "chosen"
            raise DataError(index, field, f"this row is {form.style} with an {form.prompt} prompt, but row 0 is "
                                          f"{first.style} with an {first.prompt} prompt; TRL reads the form off "
                                          "row 0, so give every row the same form")
    return first


# ---------------------------------------------------------------- pairs with a known preference
def _wrong_answer(right: int, rng: random.Random) -> int:
    """A plausible mistake: off by one or two, or by ten (a slipped carry); never the right answer."""
    return right + rng.choice([-10, -2, -1, 1, 2, 10])


def _verbose_answer(question: str, right: str) -> str:
    """Right, but not what the system prompt asks for ("Answer with the result only")."""
    sum_ = question.removeprefix("What is ").removesuffix("?")
    return f"Let me work this out step by step. {sum_} = {right}. So the answer is {right}."


def arithmetic_preference_rows(n: int, seed: int = 0, rejected: str = "wrong",
                               conversational: bool = True) -> list[dict[str, Any]]:
    """``n`` arithmetic preference pairs whose preference is known, the same for the same random seed.

    The prompts and right answers are ``data.arithmetic_rows(n, seed=seed)``'s. ``chosen`` is the right answer;
    ``rejected`` is a wrong number (``"wrong"``), the right answer wrapped in working the system prompt forbids
    (``"verbose"``), or each in turn (``"mixed"``). ``conversational=False`` gives TRL's standard (string) form,
    the question as the prompt.

    >>> [r["rejected"][0]["content"] for r in arithmetic_preference_rows(2, seed=0, rejected="mixed")]
    ['156', 'Let me work this out step by step. 35 * 10 = 350. So the answer is 350.']
    >>> arithmetic_preference_rows(1, seed=0, conversational=False)[0]
    {'prompt': 'What is 99 + 55?', 'chosen': '154', 'rejected': '156'}
    """
    if rejected not in REJECTED_KINDS:
        raise ValueError(f"rejected={rejected!r}: valid kinds are {', '.join(REJECTED_KINDS)}")
    rng = random.Random(f"{seed}:wrong answers")  # its own stream: the prompts stay those of arithmetic_rows
    rows = []
    for i, row in enumerate(arithmetic_rows(n, seed)):
        # 1. The question and its computed answer, from the SFT rows of the same random seed
        question, right = row["messages"][1]["content"], row["messages"][2]["content"]
        # 2. The worse answer of this pair: a wrong number, or the right one said at length
        kind = rejected if rejected != "mixed" else REJECTED_KINDS[i % 2]
        wrong = str(_wrong_answer(int(right), rng)) if kind == "wrong" else _verbose_answer(question, right)
        # 3. In the form asked for; the system prompt stays in the conversational prompt, as in SFT
        if conversational:
            prompt = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question}]
            rows.append({"prompt": prompt, "chosen": [{"role": "assistant", "content": right}],
                         "rejected": [{"role": "assistant", "content": wrong}]})
        else:
            rows.append({"prompt": question, "chosen": right, "rejected": wrong})
    return rows


def held_out_pairs(rows: Sequence[Mapping[str, Any]], n_test: int, seed: int = 0) -> tuple[list, list]:
    """``(train, test)`` pairs with an explicit prompt, no prompt in both: a held-out prompt's every pair leaves
    the train split, and the test split keeps its first. The same random seed gives the same split.

    >>> train, test = held_out_pairs(arithmetic_preference_rows(10, seed=0), 3, seed=0)
    >>> len(train), len(test)
    (7, 3)
    """
    def key(row: Mapping[str, Any]) -> str:
        return repr(row["prompt"])

    prompts = sorted({key(r) for r in rows})
    if n_test >= len(prompts) > 0:
        raise ValueError(f"holding out {n_test} prompts leaves none to train on: the pairs have only {len(prompts)} "
                         f"distinct prompts; hold out fewer than {len(prompts)}")
    random.Random(seed).shuffle(prompts)
    test_keys = prompts[:n_test]
    first_of: dict[str, Mapping[str, Any]] = {}
    for r in rows:
        first_of.setdefault(key(r), r)
    return [dict(r) for r in rows if key(r) not in set(test_keys)], [dict(first_of[k]) for k in test_keys]
