"""Public preference datasets in one form: conversational, with an explicit prompt.

The Hub's preference datasets come in TRL's forms (``preference.pairs``) or in their own:

* ``trl-lib/ultrafeedback_binarized``: conversational with an **implicit** prompt (``chosen`` and
  ``rejected`` each hold the user's turn, then one reply), plus ``score_chosen`` and ``score_rejected``;
* ``Anthropic/hh-rlhf``: **plain text** dialogues, ``"\\n\\nHuman: ...\\n\\nAssistant: ..."``, with the
  shared turns repeated in both fields.

``explicit_prompt_rows`` turns every such row into ``{"prompt": [...], "chosen": [...], "rejected": [...]}``
(other columns kept): the messages both dialogues share are the prompt, as TRL's ``extract_prompt`` cuts them.
Anything else is a ``DataError`` naming the row, the field and the fix::

    >>> row = {"chosen": "\\n\\nHuman: 2+2?\\n\\nAssistant: 4", "rejected": "\\n\\nHuman: 2+2?\\n\\nAssistant: 5"}
    >>> explicit_prompt_rows([row])[0]
    {'prompt': [{'role': 'user', 'content': '2+2?'}], 'chosen': [{'role': 'assistant', 'content': '4'}], \
'rejected': [{'role': 'assistant', 'content': '5'}]}
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from coursekit.chat import DataError
from coursekit.preference.pairs import PAIR_FIELDS, _shared_start, check_preference_rows

HH_ROLES = {"Human": "user", "Assistant": "assistant"}
_HH_TURN = re.compile(r"\n\n(Human|Assistant): ?")


def hh_messages(text: str, index: int = 0, name: str = "chosen") -> list[dict[str, str]]:
    """An hh-rlhf dialogue as messages: each ``\\n\\nHuman:`` / ``\\n\\nAssistant:`` starts a turn.

    >>> hh_messages("\\n\\nHuman: Hi\\n\\nAssistant: Hello!")
    [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello!'}]
    """
    # 1. The text must open with a turn marker: whatever comes before it belongs to no speaker
    parts = _HH_TURN.split(text)
    if len(parts) < 3 or parts[0].strip():
        raise DataError(index, name, f"field {name!r} is plain text but not an hh-rlhf dialogue (it must start "
                                     f"with '\\n\\nHuman: '): {text[:60]!r}; give messages, or a 'prompt' field")
    # 2. split() alternates speaker and words: [before, speaker, words, speaker, words, ...]
    return [{"role": HH_ROLES[speaker], "content": words.strip()} for speaker, words in zip(parts[1::2], parts[2::2])]


def _as_messages(row: Mapping[str, Any], index: int) -> dict[str, Any]:
    """An implicit-prompt row's two fields as messages (hh-rlhf text parsed; lists kept as they are)."""
    out = dict(row)
    for name in PAIR_FIELDS:
        if isinstance(row[name], str):
            out[name] = hh_messages(row[name], index, name)
    return out


def _split_prompt(row: dict[str, Any], index: int) -> dict[str, Any]:
    """The messages both answers share become the prompt; it must end where a reply starts (a user's turn)."""
    chosen, rejected = row["chosen"], row["rejected"]
    shared = _shared_start(chosen, rejected)
    if shared == 0 or chosen[shared - 1]["role"] == "assistant":
        raise DataError(index, "prompt", f"'chosen' and 'rejected' share {shared} messages, which do not end with "
                                         "a user's turn to answer; add a 'prompt' field")
    rest = {k: v for k, v in row.items() if k not in PAIR_FIELDS}
    return {"prompt": chosen[:shared], "chosen": chosen[shared:], "rejected": rejected[shared:], **rest}


def explicit_prompt_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every row as conversational with an explicit prompt; rows already in that form are returned unchanged.

    Plain-text rows with an explicit prompt (TRL's standard form) are returned unchanged too: the chat template
    is then the trainer's business. Every result is checked again by ``check_preference_rows``.

    >>> rows = [{"chosen": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
    ...          "rejected": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "5"}],
    ...          "score_chosen": 9.0, "score_rejected": 2.0}]
    >>> out = explicit_prompt_rows(rows)[0]
    >>> out["prompt"], out["chosen"], out["score_chosen"]
    ([{'role': 'user', 'content': '2+2?'}], [{'role': 'assistant', 'content': '4'}], 9.0)
    """
    if isinstance(rows, Mapping) or not len(rows):
        raise ValueError("explicit_prompt_rows takes a non-empty list of rows (dicts with 'chosen' and 'rejected')")
    if "prompt" in rows[0]:
        check_preference_rows(rows)
        return [dict(r) for r in rows]
    # Parse before checking: two hh-rlhf texts share their start character by character, not turn by turn
    out = [_split_prompt(_as_messages(row, i), i) for i, row in enumerate(rows)]
    check_preference_rows(out)
    return out


def load_preference_dataset(repo_id: str, split: str = "train", n: int | None = None) -> list[dict[str, Any]]:
    """The first ``n`` rows of a Hub preference dataset, as ``explicit_prompt_rows``; one line says how many
    rows were dropped because their two answers are the same (they teach no preference)."""
    from coursekit.hub import load_hub_dataset

    ds = load_hub_dataset(repo_id, split=split if n is None else f"{split}[:{n}]")
    rows = [dict(r) for r in ds]
    kept = [r for r in rows if not (isinstance(r.get("chosen"), (str, list)) and r.get("chosen") == r.get("rejected"))]
    if len(kept) < len(rows):
        print(f"{repo_id}: dropped {len(rows) - len(kept)} of {len(rows)} rows whose chosen equals rejected")
    return explicit_prompt_rows(kept)
