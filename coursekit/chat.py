"""Chat data for fine-tuning: rows of three forms become messages, a template renders them, and a label
mask trains only the assistant's replies.

* **Formats**: ``messages`` (also ShareGPT's from/value), ``prompt_completion`` and Alpaca rows become
  chat ``messages``. A bad row raises a ``DataError`` that names its index and the field::

    >>> to_messages({"prompt": "2 + 2 =", "completion": "4"})
    [{'role': 'user', 'content': '2 + 2 ='}, {'role': 'assistant', 'content': '4'}]
    >>> to_messages({"instruction": "Add.", "input": "2 + 2", "output": "4"})   # Alpaca
    [{'role': 'user', 'content': 'Add.\\n\\n2 + 2'}, {'role': 'assistant', 'content': '4'}]
    >>> to_messages({"prompt": "2 + 2 ="}, index=7)
    Traceback (most recent call last):
    coursekit.chat.DataError: row 7: missing field 'completion' (prompt_completion rows need prompt, completion)

* **Templates**: ``render_chat`` gives the exact text the model sees, with the tokenizer's own template,
  ChatML, or ``plain`` (prompt, then completion + EOS) for a base model without one.
* **Loss only on the assistant**: ``tokenize_chat`` gives every token outside the assistant's replies the
  label -100. The trained tokens are each reply plus its end-of-turn token (``<|im_end|>`` for ChatML), so
  the model learns to stop::

    >>> from coursekit.assets import load_tiny
    >>> _, tok = load_tiny("llama")                  # a tiny random model with a ChatML template
    >>> messages = [{"role": "user", "content": "What is 7 * 22?"}, {"role": "assistant", "content": "154"}]
    >>> ex = tokenize_chat(tok, messages)            # {"input_ids": [...], "labels": [...]}
    >>> trained_text(tok, ex)                        # decode the tokens that are not -100
    ['154<|im_end|>']

  Why not TRL's ``assistant_only_loss=True``? It needs ``{% generation %}`` markers in the chat template,
  which SmolLM2's (and most) templates lack. We tokenize ourselves and hand TRL ``input_ids`` + ``labels``,
  which it uses as they are.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from coursekit.objectives import IGNORE_INDEX

__all__ = [
    "CHATML_TEMPLATE",
    "DataError",
    "PLAIN_TEMPLATE",
    "assistant_spans",
    "convert_rows",
    "detect_format",
    "held_out_split",
    "masked_html",
    "prepare_dataset",
    "render_chat",
    "to_messages",
    "tokenize_chat",
    "trained_text",
]

CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
ROLES = ("system", "user", "assistant")
FORMATS: dict[str, tuple[str, ...]] = {  # format -> its required fields (Alpaca's "input" is optional)
    "messages": ("messages",),
    "prompt_completion": ("prompt", "completion"),
    "alpaca": ("instruction", "output"),
}
FIELD_NAMES = ("messages", "prompt", "completion", "instruction", "input", "output")
SHAREGPT_ROLES = {"human": "user", "gpt": "assistant", "system": "system", "user": "user", "assistant": "assistant"}
# Renders rows for a base model without a chat template: prompt, then completion + EOS.
PLAIN_TEMPLATE = (
    "{% if bos_token %}{{ bos_token }}{% endif %}{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ m['content'] + '\n\n' }}"
    "{% elif m['role'] == 'assistant' %}{{ m['content'] + eos_token }}"
    "{% else %}{{ m['content'] }}{% endif %}{% endfor %}"
)
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>", "</s>", "<|endoftext|>", "<|end_of_text|>")


class DataError(ValueError):
    """A dataset row is malformed; the message names the row index and the field (and ``source``, the file)."""

    def __init__(self, index: int, field_name: str, problem: str, source: str | None = None) -> None:
        self.index, self.field, self.problem, self.source = index, field_name, problem, source
        super().__init__(f"{source}, row {index}: {problem}" if source else f"row {index}: {problem}")


# ================================================================ data: three forms -> messages
def _has(row: Mapping[str, Any], name: str, fields_map: Mapping[str, str]) -> bool:
    return fields_map.get(name, name) in row


def detect_format(row: Mapping[str, Any], fields_map: Mapping[str, str] | None = None, index: int = 0) -> str:
    """``"messages"``, ``"prompt_completion"`` or ``"alpaca"``, from the fields a row has.

    >>> detect_format({"instruction": "Add.", "input": "", "output": "4"})
    'alpaca'
    """
    fields_map = fields_map or {}
    for fmt, required in FORMATS.items():
        if all(_has(row, f, fields_map) for f in required):
            return fmt
    for fmt, required in FORMATS.items():  # a partial form: name the field it lacks
        if any(_has(row, f, fields_map) for f in required):
            _text(row, next(f for f in required if not _has(row, f, fields_map)), fields_map, index, fmt)
    raise DataError(index, "", f"no known form: has fields {sorted(row)}; expected one of "
                    + "; ".join(f"{fmt} ({', '.join(req)})" for fmt, req in FORMATS.items()))


def _text(row: Mapping[str, Any], name: str, fields_map: Mapping[str, str], index: int, fmt: str,
          optional: bool = False) -> str:
    column = fields_map.get(name, name)
    value = row.get(column)
    if value is None:  # absent, or null (how a table fills a field that only other rows have)
        if optional:
            return ""
        need = ", ".join(fields_map.get(f, f) for f in FORMATS[fmt])
        raise DataError(index, column, f"missing field {column!r} ({fmt} rows need {need})")
    if not isinstance(value, str):
        raise DataError(index, column, f"field {column!r} must be a string, got {type(value).__name__}")
    if not value.strip() and not optional:
        raise DataError(index, column, f"field {column!r} is empty")
    return value


def _check_message(msg: Any, index: int, where: str) -> dict[str, str]:
    if not isinstance(msg, Mapping):
        raise DataError(index, where, f"field {where!r} must be a dict with role and content")
    role = msg.get("role", SHAREGPT_ROLES.get(str(msg.get("from")), msg.get("from")))  # ShareGPT from/value too
    content = msg.get("content", msg.get("value"))
    if role not in ROLES:
        raise DataError(index, f"{where}.role", f"field '{where}.role' is {role!r}; valid roles: {', '.join(ROLES)}")
    if not isinstance(content, str):
        raise DataError(index, f"{where}.content", f"field '{where}.content' must be a string, "
                        f"got {type(content).__name__}")
    return {"role": role, "content": content}


def _messages_form(row: Mapping[str, Any], fields_map: Mapping[str, str], index: int) -> list[dict[str, str]]:
    column = fields_map.get("messages", "messages")
    raw = row.get(column)
    if not isinstance(raw, list) or not raw:
        raise DataError(index, column, f"field {column!r} must be a non-empty list of messages")
    msgs = [_check_message(m, index, f"{column}[{i}]") for i, m in enumerate(raw)]
    if not any(m["role"] == "assistant" and m["content"].strip() for m in msgs):
        raise DataError(index, column, f"field {column!r} has no non-empty assistant message to train on")
    return msgs


def to_messages(row: Mapping[str, Any], index: int = 0, fmt: str = "auto",
                fields_map: Mapping[str, str] | None = None, system: str | None = None) -> list[dict[str, str]]:
    """One row of any accepted form as a list of ``{"role", "content"}`` messages.

    ``fields_map`` maps our field names to the dataset's columns, e.g.
    ``{"prompt": "synopsis", "completion": "short_story"}``. ``system`` adds a
    system message unless the row has one. Alpaca: the user turn is the
    instruction, then a blank line and the input (when there is one).

    >>> to_messages({"q": "Hi", "a": "Hello"}, fields_map={"prompt": "q", "completion": "a"}, system="Be brief.")
    [{'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello'}]
    """
    fields_map = dict(fields_map or {})
    fmt = detect_format(row, fields_map, index) if fmt == "auto" else fmt
    if fmt == "messages":
        msgs = _messages_form(row, fields_map, index)
    elif fmt == "prompt_completion":
        msgs = [{"role": "user", "content": _text(row, "prompt", fields_map, index, fmt)},
                {"role": "assistant", "content": _text(row, "completion", fields_map, index, fmt)}]
    elif fmt == "alpaca":
        instruction = _text(row, "instruction", fields_map, index, fmt)
        extra = _text(row, "input", fields_map, index, fmt, optional=True)
        user = f"{instruction}\n\n{extra}" if extra.strip() else instruction
        msgs = [{"role": "user", "content": user},
                {"role": "assistant", "content": _text(row, "output", fields_map, index, fmt)}]
    else:
        raise ValueError(f"Unknown format {fmt!r}. Valid formats: auto, {', '.join(FORMATS)}.")
    if system and msgs[0]["role"] != "system":
        msgs = [{"role": "system", "content": system}, *msgs]
    return msgs


def convert_rows(rows: Iterable[Mapping[str, Any]], fmt: str = "auto", fields_map: Mapping[str, str] | None = None,
                 system: str | None = None) -> list[dict[str, Any]]:
    """Every row as ``{"messages": [...]}``; the first bad row raises a ``DataError``."""
    return [{"messages": to_messages(row, i, fmt, fields_map, system)} for i, row in enumerate(rows)]


def held_out_split(rows: Sequence[Mapping[str, Any]], n_test: int, seed: int = 0) -> tuple[list, list]:
    """``(train, test)`` with no prompt in both: duplicates of a test prompt leave the train split.

    Generated datasets repeat questions (``units`` has 96 distinct ones in 200
    rows), so a plain random split would test on questions seen in training.
    """
    def key(row: Mapping[str, Any]) -> str:
        return repr([m["content"] for m in to_messages(row)[:-1]])

    prompts = sorted({key(r) for r in rows})
    if 0 < len(prompts) <= n_test or (n_test > 0 and not prompts):
        raise ValueError(f"holding out {n_test} prompts leaves none to train on: the rows have only {len(prompts)} "
                         f"distinct prompts; hold out fewer than {len(prompts)}")
    random.Random(seed).shuffle(prompts)
    test_keys = set(prompts[:n_test])
    first_of: dict[str, Mapping[str, Any]] = {}
    for r in rows:
        first_of.setdefault(key(r), r)
    test = [first_of[k] for k in prompts[:n_test]]
    return [dict(r) for r in rows if key(r) not in test_keys], [dict(r) for r in test]


# ================================================================ tokenization with assistant-only labels
def chat_template_for(tokenizer: Any, template: str | None = "auto") -> str:
    """The Jinja template to render with: the tokenizer's own, ``plain`` (no template), ``chatml``, or a literal."""
    if template in (None, "auto"):
        return tokenizer.chat_template or PLAIN_TEMPLATE
    named = {"plain": PLAIN_TEMPLATE, "chatml": CHATML_TEMPLATE, "tokenizer": tokenizer.chat_template}
    if template in named:
        if named[template] is None:
            raise ValueError("chat_template: 'tokenizer' asked for, but this tokenizer has no chat template.")
        return named[template]
    return template


def render_chat(tokenizer: Any, messages: Sequence[Mapping[str, str]], add_generation_prompt: bool = False,
                template: str | None = "auto") -> str:
    """The exact text the model sees for ``messages``.

    ``enable_thinking=False`` is passed to every template (templates that do not
    know it ignore it): Qwen3 then puts its empty ``<think></think>`` block in
    the generation prompt too, so training and generation see the same text.
    """
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=add_generation_prompt,
                                         chat_template=chat_template_for(tokenizer, template), enable_thinking=False)


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _end_of_turn(tokenizer: Any, text: str, at: int) -> int:
    """Length of the end-of-turn token that follows a reply at ``text[at:]`` (0 if none)."""
    for marker in (tokenizer.eos_token, *END_OF_TURN):
        if marker and text.startswith(marker, at):
            return len(marker)
    return 0


def assistant_spans(tokenizer: Any, messages: Sequence[Mapping[str, str]], text: str,
                    template: str | None = "auto", end_of_turn: bool = True) -> list[tuple[int, int]]:
    """Character spans of each assistant reply in ``text`` (plus its end-of-turn token).

    A reply starts where the prompt up to it (rendered with the generation
    prompt) stops matching ``text``; some templates then add a few characters
    (Qwen3's empty ``<think></think>``), so the reply is searched from there.
    """
    spans = []
    for i, msg in enumerate(messages):
        if msg["role"] != "assistant":
            continue
        if i == 0:  # the assistant speaks first (a greeting): no prompt before it to render
            start = 0
        else:
            start = _common_prefix(render_chat(tokenizer, messages[:i], add_generation_prompt=True, template=template),
                                   text)
        content = msg["content"]
        pos = text.find(content, start)
        if pos < 0:  # templates that trim the reply
            content = content.strip()
            pos = text.find(content, start)
        if pos < 0:
            raise ValueError(f"The chat template does not render assistant message {i} verbatim, "
                             "so its tokens cannot be located for the loss mask.")
        end = pos + len(content)
        spans.append((pos, end + (_end_of_turn(tokenizer, text, end) if end_of_turn else 0)))
    return spans


def tokenize_chat(tokenizer: Any, messages: Sequence[Mapping[str, str]], template: str | None = "auto",
                  end_of_turn: bool = True) -> dict[str, list[int]]:
    """``input_ids`` of the rendered chat and ``labels``: -100 except on the assistant's replies.

    A token is trained when any of its characters lies in a reply (or the
    end-of-turn token right after it). So if the prompt ends in a space that
    the tokenizer merges into the reply's first token (" A"), that token is
    trained whole. Needs a fast tokenizer (offsets).

    >>> from coursekit.assets import load_tiny
    >>> _, tok = load_tiny("llama")
    >>> ex = tokenize_chat(tok, [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}])
    >>> trained_text(tok, ex)
    ['4<|im_end|>']
    """
    text = render_chat(tokenizer, messages, template=template)
    spans = assistant_spans(tokenizer, messages, text, template, end_of_turn)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    labels = [tid if any(s < e_tok and e_tok > s_tok and s_tok < e for s, e in spans) else IGNORE_INDEX
              for tid, (s_tok, e_tok) in zip(enc["input_ids"], enc["offset_mapping"])]
    return {"input_ids": list(enc["input_ids"]), "labels": labels}


def trained_text(tokenizer: Any, example: Mapping[str, Sequence[int]]) -> list[str]:
    """Decode each run of consecutive trained tokens (label != -100): what the loss sees."""
    runs: list[list[int]] = []
    prev = False
    for tid, lab in zip(example["input_ids"], example["labels"]):
        if lab != IGNORE_INDEX:
            if not prev:
                runs.append([])
            runs[-1].append(tid)
        prev = lab != IGNORE_INDEX
    return [tokenizer.decode(r) for r in runs]


def masked_html(tokenizer: Any, example: Mapping[str, Sequence[int]]) -> str:
    """The tokens as coloured HTML spans: grey = masked (-100), green = trained."""
    parts = []
    for tid, lab in zip(example["input_ids"], example["labels"]):
        piece = escape(tokenizer.decode([tid])).replace("\n", "↵<br>")
        style = ("background:#c8f7c5;color:#064" if lab != IGNORE_INDEX else "background:#eee;color:#777")
        parts.append(f'<span style="{style};border:1px solid #fff;font-family:monospace">{piece}</span>')
    return "<div style='line-height:1.9'>" + "".join(parts) + "</div>"


def prepare_dataset(data: Any, tokenizer: Any, fmt: str = "auto", fields_map: Mapping[str, str] | None = None,
                    system: str | None = None, template: str | None = "auto") -> Any:
    """Rows of any accepted form (a list or a ``datasets.Dataset``) → a Dataset of ``input_ids`` + ``labels``."""
    from datasets import Dataset

    rows = convert_rows(data, fmt, fields_map, system)
    if not rows:
        raise ValueError("prepare_dataset got no rows: there is nothing to tokenize; give it at least one row")
    return Dataset.from_list([tokenize_chat(tokenizer, r["messages"], template) for r in rows])
