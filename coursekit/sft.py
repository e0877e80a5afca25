"""Supervised fine-tuning (SFT) with TRL and LoRA: data, loss masking, training and evaluation.

Three groups of helpers, each small enough to read in one go:

* **Data**: three row forms become chat ``messages``. A bad row raises a
  ``DataError`` that names its index and the field::

    >>> to_messages({"prompt": "2 + 2 =", "completion": "4"})
    [{'role': 'user', 'content': '2 + 2 ='}, {'role': 'assistant', 'content': '4'}]
    >>> to_messages({"instruction": "Add.", "input": "2 + 2", "output": "4"})   # Alpaca
    [{'role': 'user', 'content': 'Add.\\n\\n2 + 2'}, {'role': 'assistant', 'content': '4'}]
    >>> to_messages({"prompt": "2 + 2 ="}, index=7)
    Traceback (most recent call last):
    coursekit.sft.DataError: row 7: missing field 'completion' (prompt_completion rows need prompt, completion)

* **Loss only on the assistant**: ``tokenize_chat`` renders the chat template,
  then gives every token outside the assistant's replies the label -100. The
  trained tokens are each reply plus its end-of-turn token (``<|im_end|>`` for
  ChatML), so the model learns to stop::

    >>> from coursekit.assets import load_tiny
    >>> _, tok = load_tiny("llama")                  # a tiny random model with a ChatML template
    >>> messages = [{"role": "user", "content": "What is 7 * 22?"}, {"role": "assistant", "content": "154"}]
    >>> ex = tokenize_chat(tok, messages)            # {"input_ids": [...], "labels": [...]}
    >>> trained_text(tok, ex)                        # decode the tokens that are not -100
    ['154<|im_end|>']

  Why not TRL's ``assistant_only_loss=True``? It needs ``{% generation %}``
  markers in the chat template, which SmolLM2's (and most) templates lack.
  We tokenize ourselves and hand TRL ``input_ids`` + ``labels``, which it
  uses as they are.

* **Training**: ``train()`` wraps TRL's ``SFTTrainer`` + peft's ``LoraConfig``,
  with the precision from ``coursekit.runtime.pick_precision`` and TRL's
  progress bar; ``plot_loss`` draws the loss history.

YAML recipes that drive these helpers live in ``coursekit.recipes``; the
command ``python -m coursekit.sft recipes/sft_smoke.yml`` runs one through it.

Packing (``train(packing=True)``, a recipe's ``sample_packing: true``) uses
TRL's best-fit-decreasing packing. It is padding-free: the examples of a pack
sit in one row with their own ``position_ids``, and transformers turns those
into a block-diagonal causal mask, so no example attends to another
(``tests/test_sft.py`` checks it).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import torch

from coursekit.quiet import progress_bars
from coursekit.runtime import Precision, effective_seed, get_device, pick_precision
from coursekit.textgen import IGNORE_INDEX

__all__ = [
    "DataError",
    "SFTRun",
    "answer_accuracy",
    "convert_rows",
    "detect_format",
    "generate_answers",
    "held_out_split",
    "lora_config",
    "masked_html",
    "plot_loss",
    "prepare_dataset",
    "resolve_precision",
    "saved_activation_bytes",
    "score_answers",
    "to_messages",
    "tokenize_chat",
    "train",
    "trained_text",
]

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
    """A dataset row is malformed; the message names the row index and the field."""

    def __init__(self, index: int, field_name: str, problem: str) -> None:
        self.index, self.field = index, field_name
        super().__init__(f"row {index}: {problem}")


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
    if column not in row:
        if optional:
            return ""
        need = ", ".join(fields_map.get(f, f) for f in FORMATS[fmt])
        raise DataError(index, column, f"missing field {column!r} ({fmt} rows need {need})")
    value = row[column]
    if value is None and optional:
        return ""
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

    Generated datasets repeat questions (``units`` has 120 distinct ones in 200
    rows), so a plain random split would test on questions seen in training.
    """
    import random

    def key(row: Mapping[str, Any]) -> str:
        return repr([m["content"] for m in to_messages(row)[:-1]])

    prompts = sorted({key(r) for r in rows})
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
    from coursekit.assets import CHATML_TEMPLATE

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
        prefix = render_chat(tokenizer, messages[:i], add_generation_prompt=True, template=template)
        start = _common_prefix(prefix, text)
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
    return Dataset.from_list([tokenize_chat(tokenizer, r["messages"], template) for r in rows])


# ================================================================ evaluation
def _prompts(tokenizer: Any, rows: Sequence[Mapping[str, Any]], template: str | None) -> tuple[list[str], list[str]]:
    convs = [to_messages(r) for r in rows]
    prompts = [render_chat(tokenizer, c[:-1], add_generation_prompt=True, template=template) for c in convs]
    return prompts, [c[-1]["content"] for c in convs]


@torch.no_grad()
def generate_answers(model: Any, tokenizer: Any, rows: Sequence[Mapping[str, Any]], max_new_tokens: int = 16,
                     batch_size: int = 32, template: str | None = "auto") -> list[str]:
    """Greedy replies to each row's prompt (its messages minus the last reply), batched, left-padded."""
    prompts, _ = _prompts(tokenizer, rows, template)
    device = next(model.parameters()).device
    out: list[str] = []
    for i in range(0, len(prompts), batch_size):
        enc = tokenizer(prompts[i:i + batch_size], return_tensors="pt", padding=True, padding_side="left",
                        add_special_tokens=False).to(device)  # left: every prompt ends where generation starts
        ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
        out += tokenizer.batch_decode(ids[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return [o.strip() for o in out]


def answer_accuracy(model: Any, tokenizer: Any, rows: Sequence[Mapping[str, Any]], **kwargs: Any) -> dict[str, Any]:
    """Exact match (``coursekit.evals.exact_match``) of greedy replies against each row's reference reply."""
    from coursekit.evals import exact_match

    preds = generate_answers(model, tokenizer, rows, **kwargs)
    refs = [to_messages(r)[-1]["content"] for r in rows]
    return {"exact_match": exact_match(preds, refs), "predictions": preds, "references": refs}


def _pad(seqs: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    return torch.tensor([list(s) + [value] * (width - len(s)) for s in seqs])


@torch.no_grad()
def score_answers(model: Any, tokenizer: Any, examples: Any, batch_size: int = 16) -> dict[str, float]:
    """Loss on the trained tokens, the share of them that are the argmax (``token_accuracy``), and the share
    of examples whose every trained token is the argmax (``exact_match``).

    One forward pass per batch, with logits only where a trained token is predicted. ``exact_match`` equals greedy-decoding exact
    match at the token level: greedy reproduces the reference reply (and
    stops) exactly when each next token is the most likely one.
    """
    device = next(model.parameters()).device
    total, count, right, hits = 0.0, 0, 0, 0
    examples = list(examples)
    for i in range(0, len(examples), batch_size):
        chunk = examples[i:i + batch_size]
        ids = _pad([e["input_ids"] for e in chunk], tokenizer.pad_token_id).to(device)
        labels = _pad([e["labels"] for e in chunk], IGNORE_INDEX).to(device)
        mask = _pad([[1] * len(e["input_ids"]) for e in chunk], 0).to(device)
        # Only the positions whose next token is trained need logits: on a 150k vocabulary the LM head is most
        # of the cost, and answers are a few tokens at the end. (B, T) -> the columns any row trains
        scored = (labels[:, 1:] != IGNORE_INDEX).any(dim=0).nonzero().squeeze(1)
        logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=scored).logits.float()  # (B, n, V)
        target = labels[:, 1:][:, scored]
        keep = target != IGNORE_INDEX
        # flattened (B·T, V), as in evals: the (B, V, T) layout loses ~1e-5 relative on CPU at a 49k vocabulary
        nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1),
                                                reduction="none", ignore_index=IGNORE_INDEX).view_as(target)
        total, count = total + nll[keep].sum().item(), count + int(keep.sum())
        hit = logits.argmax(-1) == target
        hits += int((hit & keep).sum())
        right += int((hit | ~keep).all(dim=1).sum())
    n = max(len(examples), 1)
    return {"loss": total / max(count, 1), "token_accuracy": hits / max(count, 1), "exact_match": right / n}


def saved_activation_bytes(model: Any, batch: Mapping[str, torch.Tensor], backward: bool = False) -> int:
    """Bytes of activations one training forward pass saves for backward (weights excluded).

    Measured with ``torch.autograd.graph.saved_tensors_hooks``, so it works on
    the CPU too, where no allocator reports a peak. With gradient checkpointing
    the layers save nothing (they are recomputed during backward); what remains
    is the rest of the graph, e.g. the logits. ``backward=True`` completes the
    step (gradients are then zeroed), which is when the recomputation happens.
    """
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params:
            seen[ptr] = t.untyped_storage().nbytes()
        return t

    was_training = model.training
    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(**batch).loss
    if backward:
        loss.backward()
        model.zero_grad(set_to_none=True)
    del loss  # frees the graph and everything it saved
    model.train(was_training)
    return sum(seen.values())


# ================================================================ training
def resolve_precision(bf16: bool | str = "auto", fp16: bool = False, device: str | None = None) -> Precision:
    """The precision to train in. ``fp16: true`` wins over ``bf16: auto``; ``bf16: auto`` alone →
    ``pick_precision``; bf16 asked for where the GPU lacks it → fp16, said in one printed line; on a CPU →
    fp32, also said."""
    device = device or get_device()
    best = pick_precision(device)
    if fp16 and bf16 in ("auto", False):
        want = "fp16"
    elif bf16 == "auto":
        return best
    elif bf16 is False:
        return Precision("fp32", "bf16: false, fp16: false")
    else:
        want = "bf16"
    if device != "cuda":
        print(f"{want} asked for, but there is no CUDA GPU: training in {best.name} ({best.reason})")
        return best
    if want == "bf16" and not best.bf16:
        print("bf16 asked for, but this GPU has no native bf16: falling back to fp16 (with loss scaling)")
        return Precision("fp16", "bf16 requested; GPU lacks it")
    return Precision(want, f"{want} requested")


def lora_config(r: int = 8, alpha: float = 16, dropout: float = 0.0,
                target_modules: str | Sequence[str] = ("q_proj", "v_proj")) -> Any:
    """peft ``LoraConfig`` for a causal LM. ``target_modules="all-linear"`` targets every linear layer."""
    from peft import LoraConfig

    targets = target_modules if isinstance(target_modules, str) else list(target_modules)
    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, bias="none",
                      task_type="CAUSAL_LM")


@dataclass
class SFTRun:
    """What ``train`` returns: the trainer, the (peft) model, and the loss per logged step."""

    trainer: Any
    model: Any
    history: list[dict[str, float]]
    seconds: float
    output_dir: str
    eval_metrics: dict[str, float] = field(default_factory=dict)  # recipes.run_recipe, val_set_size > 0

    @property
    def losses(self) -> list[float]:
        return [h["loss"] for h in self.history]

    @property
    def final_loss(self) -> float:
        return self.losses[-1]


def _history(trainer: Any) -> list[dict[str, float]]:
    return [{"step": h["step"], "loss": h["loss"]} for h in trainer.state.log_history if "loss" in h]


def _check_fits(dataset: Any, max_length: int | None, packing: bool) -> None:
    """TRL drops examples whose trained tokens all fall past ``max_length``; fail clearly if that is all of them."""
    if max_length is None or packing:
        return
    firsts = [next((i for i, lab in enumerate(ex) if lab != IGNORE_INDEX), None) for ex in dataset["labels"]]
    if not any(f is not None and f < max_length for f in firsts):
        longest = max(len(ids) for ids in dataset["input_ids"])
        raise ValueError(f"max_length (sequence_len) {max_length} cuts off every reply: no example would train. "
                         f"The longest example has {longest} tokens; raise sequence_len.")


def train(model: Any, tokenizer: Any, dataset: Any, *, output_dir: str | Path, lora: Any = None,
          max_steps: int = -1, num_epochs: float = 1, batch_size: int = 4, grad_accum: int = 1,
          learning_rate: float = 2e-4, lr_scheduler: str = "constant", warmup_steps: int = 0,
          optimizer: str = "adamw_torch", weight_decay: float = 0.0, max_length: int | None = 512,
          packing: bool = False, gradient_checkpointing: bool = False, precision: Precision | None = None,
          seed: int = 0, logging_steps: int = 1, progress: bool = True, save: bool = True) -> SFTRun:
    """Fine-tune ``model`` with TRL's ``SFTTrainer`` (LoRA when ``lora`` is a ``LoraConfig``).

    ``dataset`` is rows of any accepted form, or already tokenized
    (``input_ids`` + ``labels``). The adapter is saved to ``output_dir``
    unless ``save=False``. ``progress=False`` shows neither the bar nor the
    per-step log lines; the losses are in ``run.losses`` either way.

    >>> import tempfile
    >>> from coursekit.assets import load_tiny
    >>> model, tok = load_tiny("llama")
    >>> rows = [{"prompt": f"{a} + {a} =", "completion": str(2 * a)} for a in range(8)]
    >>> run = train(model, tok, rows, output_dir=tempfile.mkdtemp(), lora=lora_config(r=8), max_steps=20,
    ...             learning_rate=1e-2, progress=False)
    >>> len(run.losses), run.final_loss < run.losses[0]
    (20, True)
    """
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    if not (isinstance(dataset, Dataset) and "input_ids" in dataset.column_names):
        dataset = prepare_dataset(dataset, tokenizer)
    _check_fits(dataset, max_length, packing)
    if "bitsandbytes" in sys.modules:  # a 4-bit model: undo bitsandbytes' inference-only CPU repacking first
        from coursekit.quant import keep_4bit_trainable

        keep_4bit_trainable(model)
    precision = precision or pick_precision(get_device())
    args = SFTConfig(
        output_dir=str(output_dir), max_steps=max_steps, num_train_epochs=num_epochs,
        per_device_train_batch_size=batch_size, gradient_accumulation_steps=grad_accum,
        learning_rate=learning_rate, lr_scheduler_type=lr_scheduler, warmup_steps=warmup_steps, optim=optimizer,
        weight_decay=weight_decay, bf16=precision.bf16, fp16=precision.fp16, max_length=max_length,
        packing=packing, activation_checkpointing=gradient_checkpointing, seed=effective_seed(seed),
        logging_steps=logging_steps,
        save_strategy="no", report_to="none", disable_tqdm=not progress, dataloader_pin_memory=False)
    with progress_bars(progress):  # progress=False: no dataset-preparation bars either
        trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                             peft_config=lora)
    if not progress:
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # without a bar, Trainer prints every log dict instead
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    if save:
        trainer.save_model(str(output_dir))
    trained = trainer.model.eval()
    return SFTRun(trainer, trained, _history(trainer), seconds, str(output_dir))


def plot_loss(runs: SFTRun | Mapping[str, SFTRun | Sequence[float]], ax: Any = None,
              title: str = "training loss") -> Any:
    """Loss against step for one run or several (``{"label": run_or_losses}``), through
    ``coursekit.plots.plot_losses``; returns the axes."""
    from coursekit.plots import plot_losses

    runs = {"loss": runs} if isinstance(runs, SFTRun) else runs
    histories = {label: run.losses if isinstance(run, SFTRun) else list(run) for label, run in runs.items()}
    return plot_losses(histories, ax, title=title, ylabel="loss (assistant tokens)")


if __name__ == "__main__":  # the documented CLI: python -m coursekit.sft recipes/<name>.yml
    from coursekit.recipes import main

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main(prog="python -m coursekit.sft"))
