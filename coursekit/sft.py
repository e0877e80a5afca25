"""Supervised fine-tuning (SFT) with TRL and LoRA: data, loss masking, training and YAML recipes.

Four groups of helpers, each small enough to read in one go:

* **Data**: three row forms become chat ``messages``. A bad row raises a
  ``DataError`` that names its index and the field::

    >>> to_messages({"prompt": "2 + 2 =", "completion": "4"})
    [{'role': 'user', 'content': '2 + 2 ='}, {'role': 'assistant', 'content': '4'}]
    >>> to_messages({"instruction": "Add.", "input": "2 + 2", "output": "4"})   # Alpaca
    [{'role': 'user', 'content': 'Add.\\n\\n2 + 2'}, {'role': 'assistant', 'content': '4'}]
    >>> to_messages({"prompt": "2 + 2 ="}, index=7)
    DataError: row 7: missing field 'completion' (prompt_completion rows need prompt, completion)

* **Loss only on the assistant**: ``tokenize_chat`` renders the chat template,
  then gives every token outside the assistant's replies the label -100. The
  trained tokens are each reply plus its end-of-turn token (``<|im_end|>`` for
  ChatML), so the model learns to stop::

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

* **Recipes**: Axolotl-style YAML files in ``recipes/``, run from a notebook
  or from the command line::

    >>> run = run_recipe("recipes/sft_smoke.yml", max_steps=5)
    $ python -m coursekit.sft recipes/sft_smoke.yml
    $ python -m coursekit.sft recipes/qwen3_medical.yml --check      # validate only

  ``load_in_4bit: true`` (or ``adapter: qlora``) loads the base through
  bitsandbytes (nf4 + double quantization by default, compute dtype = the
  training precision) and runs peft's ``prepare_model_for_kbit_training``;
  bitsandbytes 0.50 does this on a CPU too. Where bitsandbytes cannot run,
  one printed line says so and the model loads unquantized.

Packing (``sample_packing: true``) uses TRL's best-fit-decreasing packing. It
is padding-free: the examples of a pack sit in one row with their own
``position_ids``, and transformers turns those into a block-diagonal causal
mask, so no example attends to another (``tests/test_sft.py`` checks it).
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields, replace
from html import escape
from pathlib import Path
from typing import Any

import torch

from coursekit.runtime import Precision, get_device, pick_precision

__all__ = [
    "DataError",
    "DatasetSpec",
    "Recipe",
    "RecipeError",
    "SFTRun",
    "answer_accuracy",
    "convert_rows",
    "detect_format",
    "generate_answers",
    "held_out_split",
    "load_model",
    "load_recipe",
    "lora_config",
    "masked_html",
    "plot_loss",
    "prepare_dataset",
    "resolve_precision",
    "run_recipe",
    "saved_activation_bytes",
    "score_answers",
    "to_messages",
    "tokenize_chat",
    "train",
    "trained_text",
]

IGNORE_INDEX = -100  # the label every HF model's loss skips
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


class RecipeError(ValueError):
    """A recipe is invalid; the message says which key and what is allowed."""


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
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    out: list[str] = []
    try:
        for i in range(0, len(prompts), batch_size):
            enc = tokenizer(prompts[i:i + batch_size], return_tensors="pt", padding=True,
                            add_special_tokens=False).to(device)
            ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
            out += tokenizer.batch_decode(ids[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
    return [o.strip() for o in out]


def answer_accuracy(model: Any, tokenizer: Any, rows: Sequence[Mapping[str, Any]], **kwargs: Any) -> dict[str, Any]:
    """Exact match (``coursekit.evals.exact_match``) of greedy replies against each row's reference reply."""
    from coursekit.evals import exact_match

    preds = generate_answers(model, tokenizer, rows, **kwargs)
    refs = _prompts(tokenizer, rows, kwargs.get("template", "auto"))[1]
    return {"exact_match": exact_match(preds, refs), "predictions": preds, "references": refs}


def _pad(seqs: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    return torch.tensor([list(s) + [value] * (width - len(s)) for s in seqs])


@torch.no_grad()
def score_answers(model: Any, tokenizer: Any, examples: Any, batch_size: int = 16) -> dict[str, float]:
    """Loss on the trained tokens, the share of them that are the argmax (``token_accuracy``), and the share
    of examples whose every trained token is the argmax (``exact_match``).

    One forward pass per batch. ``exact_match`` equals greedy-decoding exact
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
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        target = labels[:, 1:]
        keep = target != IGNORE_INDEX
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="none",
                                                ignore_index=IGNORE_INDEX)
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
    """The precision to train in. ``bf16: auto`` → ``pick_precision``; bf16 asked for where the GPU lacks
    it → fp16, said in one printed line; on a CPU → fp32, also said."""
    device = device or get_device()
    best = pick_precision(device)
    if bf16 == "auto" or (bf16 is False and not fp16):
        return best if bf16 == "auto" else Precision("fp32", "bf16: false, fp16: false")
    want = "bf16" if bf16 is True or bf16 == "bf16" else "fp16"
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
    eval_metrics: dict[str, float] = field(default_factory=dict)  # run_recipe with val_set_size > 0

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
    (``input_ids`` + ``labels``). The adapter is saved to ``output_dir``.

    >>> run = train(model, tok, rows, output_dir="runs/x", lora=lora_config(r=8), max_steps=20, learning_rate=1e-3)
    >>> run.final_loss < run.losses[0]
    True
    """
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    if not (isinstance(dataset, Dataset) and "input_ids" in dataset.column_names):
        dataset = prepare_dataset(dataset, tokenizer)
    _check_fits(dataset, max_length, packing)
    precision = precision or pick_precision(get_device())
    args = SFTConfig(
        output_dir=str(output_dir), max_steps=max_steps, num_train_epochs=num_epochs,
        per_device_train_batch_size=batch_size, gradient_accumulation_steps=grad_accum,
        learning_rate=learning_rate, lr_scheduler_type=lr_scheduler, warmup_steps=warmup_steps, optim=optimizer,
        weight_decay=weight_decay, bf16=precision.bf16, fp16=precision.fp16, max_length=max_length,
        packing=packing, activation_checkpointing=gradient_checkpointing, seed=seed, logging_steps=logging_steps,
        save_strategy="no", report_to="none", disable_tqdm=not progress, dataloader_pin_memory=False)
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=lora)
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


# ================================================================ recipes
@dataclass
class DatasetSpec:
    """One entry of a recipe's ``datasets`` list."""

    path: str  # a Hub id, or a local .jsonl/.json/.csv/.parquet file
    name: str | None = None  # the Hub dataset's config name
    split: str = "train"  # any datasets split expression, e.g. "train[:160]"
    format: str = "auto"  # auto | messages | prompt_completion | alpaca
    fields: dict[str, str] = field(default_factory=dict)  # our field name -> the dataset's column
    system: str | None = None  # a system prompt added to rows without one


@dataclass
class Recipe:
    """An Axolotl-style training recipe; ``load_recipe`` builds one from YAML and validates it."""

    base_model: str  # Hub id, local folder, "packaged:smollm2" or "tiny:llama"
    datasets: list[DatasetSpec]
    output_dir: str
    chat_template: str = "auto"  # auto (the tokenizer's, else plain) | tokenizer | plain | chatml
    val_set_size: int = 0  # prompts held out (never trained on) and scored after training
    sequence_len: int = 512
    micro_batch_size: int = 4
    gradient_accumulation_steps: int = 1
    num_epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides num_epochs
    learning_rate: float = 2e-4
    lr_scheduler: str = "cosine"
    warmup_steps: int = 0
    optimizer: str = "adamw_torch"
    weight_decay: float = 0.0
    bf16: bool | str = "auto"  # auto | true | false
    fp16: bool = False
    adapter: str = "lora"  # lora | qlora (qlora = lora on a 4-bit base)
    lora_r: int = 8
    lora_alpha: float = 16
    lora_dropout: float = 0.05
    lora_target_modules: list[str] | str = field(default_factory=lambda: ["q_proj", "v_proj"])
    load_in_4bit: bool = False
    load_in_8bit: bool = False
    bnb_4bit_quant_type: str = "nf4"  # nf4 | fp4
    bnb_4bit_use_double_quant: bool = True
    sample_packing: bool = False
    gradient_checkpointing: bool = False
    seed: int = 0
    logging_steps: int = 1


RECIPE_KEYS = tuple(f.name for f in fields(Recipe))
DATASET_KEYS = tuple(f.name for f in fields(DatasetSpec))
_REQUIRED = ("base_model", "datasets", "output_dir")
_CHOICES = {"chat_template": None, "adapter": ("lora", "qlora"), "bnb_4bit_quant_type": ("nf4", "fp4"),
            "bf16": ("auto", True, False)}


def _unknown(keys: Iterable[str], valid: Sequence[str], where: str) -> None:
    bad = [k for k in keys if k not in valid]
    if bad:
        hints = [f"{k!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(k, valid, 1)) else repr(k)
                 for k in bad]
        raise RecipeError(f"Unknown {where} key(s): {', '.join(hints)}. Valid keys: {', '.join(valid)}.")


def _coerce(name: str, value: Any, default: Any) -> Any:
    """YAML reads ``2e-4`` as a string and ``1`` as an int: give each key the type of its default."""
    try:
        if isinstance(default, bool) or value is None or isinstance(value, bool):
            return value
        if isinstance(default, float):
            return float(value)
        if isinstance(default, int):
            return int(value)
    except (TypeError, ValueError):
        raise RecipeError(f"Recipe key {name!r} must be a {type(default).__name__}, got {value!r}.") from None
    return value


def _dataset_spec(entry: Any, i: int) -> DatasetSpec:
    if not isinstance(entry, Mapping):
        raise RecipeError(f"datasets[{i}] must be a mapping with at least 'path'; got {entry!r}.")
    _unknown(entry, DATASET_KEYS, f"datasets[{i}]")
    if not entry.get("path"):
        raise RecipeError(f"datasets[{i}] is missing 'path' (a Hub id or a local .jsonl file).")
    fmt = entry.get("format", "auto")
    if fmt not in ("auto", *FORMATS):
        raise RecipeError(f"datasets[{i}].format is {fmt!r}; valid formats: auto, {', '.join(FORMATS)}.")
    fmap = dict(entry.get("fields") or {})
    bad = [k for k in fmap if k not in FIELD_NAMES]
    if bad:
        raise RecipeError(f"datasets[{i}].fields maps unknown field(s) {bad}; valid fields: {', '.join(FIELD_NAMES)}.")
    return DatasetSpec(**{**entry, "fields": fmap})


def load_recipe(source: str | Path | Mapping[str, Any] | Recipe, **overrides: Any) -> Recipe:
    """Read a YAML file (or take a dict), validate every key, and apply ``overrides``.

    >>> load_recipe({"base_model": "tiny:llama", "datasets": [{"path": "data/units.jsonl"}],
    ...              "output_dir": "runs/x", "lr": 1e-3})
    RecipeError: Unknown recipe key(s): 'lr'. Valid keys: base_model, datasets, output_dir, ...
    """
    import yaml

    if isinstance(source, Recipe):
        return replace(source, **overrides)
    raw = dict(source) if isinstance(source, Mapping) else yaml.safe_load(Path(source).read_text(encoding="utf-8"))
    if not isinstance(raw, Mapping):
        raise RecipeError(f"A recipe must be a YAML mapping of keys; got {type(raw).__name__}.")
    raw = {**raw, **overrides}
    _unknown(raw, RECIPE_KEYS, "recipe")
    missing = [k for k in _REQUIRED if raw.get(k) in (None, "", [])]
    if missing:
        raise RecipeError(f"Recipe is missing required key(s): {', '.join(missing)}.")
    if not isinstance(raw["datasets"], list):
        raise RecipeError("Recipe key 'datasets' must be a list of {path, name, split, format, fields, system}.")
    defaults = {f.name: f.default for f in fields(Recipe) if f.default is not MISSING}
    values = {k: _coerce(k, v, defaults.get(k)) for k, v in raw.items()}
    values["datasets"] = [_dataset_spec(d, i) for i, d in enumerate(raw["datasets"])]
    for key, allowed in _CHOICES.items():
        if allowed and key in values and values[key] not in allowed:
            raise RecipeError(f"Recipe key {key!r} is {values[key]!r}; valid values: {', '.join(map(str, allowed))}.")
    _check_names(values)
    recipe = Recipe(**values)
    if recipe.adapter == "qlora" and not recipe.load_in_8bit:
        recipe.load_in_4bit = True
    if recipe.load_in_4bit and recipe.load_in_8bit:
        raise RecipeError("Choose one of load_in_4bit and load_in_8bit, not both.")
    return recipe


def _check_names(values: Mapping[str, Any]) -> None:
    """``optimizer`` and ``lr_scheduler`` must be names transformers knows."""
    from transformers.trainer_utils import SchedulerType
    from transformers.training_args import OptimizerNames

    for key, enum in (("optimizer", OptimizerNames), ("lr_scheduler", SchedulerType)):
        valid = [e.value for e in enum]
        if key in values and values[key] not in valid:
            raise RecipeError(f"Recipe key {key!r} is {values[key]!r}; valid values: {', '.join(valid)}.")


def _local_file(path: str) -> Path | None:
    from coursekit.data import DATA_DIR

    for base in (Path.cwd(), DATA_DIR.parent):
        candidate = (base / path).resolve()
        if candidate.is_file():
            return candidate
    return None


_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


def load_recipe_dataset(spec: DatasetSpec) -> Any:
    """Load one dataset entry (local file or Hub) and check that its field mapping names real columns."""
    from datasets import load_dataset

    local = _local_file(spec.path)
    if local is not None:
        ds = load_dataset(_BUILDERS.get(local.suffix, "json"), data_files=str(local), split=spec.split)
    elif Path(spec.path).suffix in _BUILDERS:
        raise RecipeError(f"Dataset file {spec.path!r} not found (looked in {Path.cwd()} and the repository).")
    else:
        try:
            ds = load_dataset(spec.path, spec.name, split=spec.split)
        except Exception as err:  # noqa: BLE001 - the Hub raises many kinds; all mean "cannot load"
            from coursekit.assets import AssetError

            raise AssetError(f"Could not load dataset {spec.path!r}: {type(err).__name__}: {str(err)[:300]}. "
                             "Offline? Use the smoke recipe (local data) or connect to the internet.") from None
    missing = {k: v for k, v in spec.fields.items() if v not in ds.column_names}
    if missing:
        raise RecipeError(f"Dataset {spec.path!r}: the field mapping {missing} names column(s) it lacks. "
                          f"Its columns: {', '.join(ds.column_names)}.")
    return ds


def recipe_rows(recipe: Recipe) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(train, held_out)`` message rows of every dataset in the recipe (``held_out_split`` on ``val_set_size``)."""
    rows = [r for s in recipe.datasets for r in convert_rows(load_recipe_dataset(s), s.format, s.fields, s.system)]
    return held_out_split(rows, recipe.val_set_size, recipe.seed) if recipe.val_set_size else (rows, [])


def recipe_dataset(recipe: Recipe, tokenizer: Any) -> tuple[Any, Any]:
    """``(train, held_out)`` tokenized with assistant-only labels (``held_out`` is None without ``val_set_size``)."""
    train_rows, test_rows = recipe_rows(recipe)
    train_ds = prepare_dataset(train_rows, tokenizer, template=recipe.chat_template)
    return train_ds, (prepare_dataset(test_rows, tokenizer, template=recipe.chat_template) if test_rows else None)


def resolve_model_name(spec: str) -> str:
    """``packaged:smollm2`` and ``tiny:llama`` → local folders; anything else unchanged."""
    from coursekit import assets

    if spec.startswith("tiny:"):
        return str(assets.tiny_model_path(spec.split(":", 1)[1]))
    return str(assets.resolve(spec))


GATED_PREFIXES = ("meta-llama/",)


def _hf_token() -> str | None:
    from huggingface_hub import get_token

    return get_token()


def check_access(name: str) -> None:
    """A gated Hub model without a token fails here, before any download, naming HF_TOKEN."""
    if name.startswith(GATED_PREFIXES) and not _hf_token():
        from coursekit.assets import AssetError

        raise AssetError(f"'{name}' is gated: accept its licence on the Hub, then set HF_TOKEN "
                         "(or run `huggingface-cli login`). No token was found.")


def _bnb_problem(device: str) -> str | None:
    """Why bitsandbytes cannot quantize here, or None when it can."""
    if importlib.util.find_spec("bitsandbytes") is None:
        return "bitsandbytes is not installed (pip install bitsandbytes)"
    if device == "mps":
        return "bitsandbytes has no Apple MPS backend"
    return None


def quantization_config(recipe: Recipe, precision: Precision, device: str) -> Any:
    """``BitsAndBytesConfig`` for 4-bit (nf4 + double quant by default) or 8-bit, or None.

    Where bitsandbytes cannot run, one line says so and the model loads unquantized.
    """
    if not (recipe.load_in_4bit or recipe.load_in_8bit):
        return None
    problem = _bnb_problem(device)
    if problem:
        bits = 4 if recipe.load_in_4bit else 8
        print(f"{bits}-bit loading asked for, but {problem}: loading the model unquantized instead.")
        return None
    from transformers import BitsAndBytesConfig

    if recipe.load_in_8bit:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=recipe.bnb_4bit_quant_type,
                              bnb_4bit_use_double_quant=recipe.bnb_4bit_use_double_quant,
                              bnb_4bit_compute_dtype=precision.dtype)


def load_model(recipe: Recipe, precision: Precision, device: str | None = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` for the recipe: full precision, or k-bit and ready for QLoRA."""
    from coursekit.assets import load_causal_lm

    device = device or get_device()
    name = resolve_model_name(recipe.base_model)
    check_access(name)
    quant = quantization_config(recipe, precision, device)
    kwargs = {"quantization_config": quant, "device_map": {"": device}} if quant is not None else {}
    model, tok = load_causal_lm(name, dtype=precision.dtype, **kwargs)
    if quant is not None:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=recipe.gradient_checkpointing)
    elif device != "cpu":
        model = model.to(device)
    return model, tok


def run_recipe(source: str | Path | Mapping[str, Any] | Recipe, evaluate: bool = True, **overrides: Any) -> SFTRun:
    """Validate, load the model and data, train with LoRA, save the adapter and tokenizer.

    With ``val_set_size`` > 0 and ``evaluate``, the held-out prompts are scored
    after training (``score_answers``) into ``run.eval_metrics``.

    >>> run = run_recipe("recipes/sft_smoke.yml", output_dir="/tmp/run", max_steps=5)
    >>> run.final_loss
    """
    recipe = load_recipe(source, **overrides)
    device = get_device()
    precision = resolve_precision(recipe.bf16, recipe.fp16, device)
    model, tok = load_model(recipe, precision, device)
    dataset, held_out = recipe_dataset(recipe, tok)
    lora = lora_config(recipe.lora_r, recipe.lora_alpha, recipe.lora_dropout, recipe.lora_target_modules)
    run = train(model, tok, dataset, output_dir=recipe.output_dir, lora=lora, max_steps=recipe.max_steps,
                num_epochs=recipe.num_epochs, batch_size=recipe.micro_batch_size,
                grad_accum=recipe.gradient_accumulation_steps, learning_rate=recipe.learning_rate,
                lr_scheduler=recipe.lr_scheduler, warmup_steps=recipe.warmup_steps, optimizer=recipe.optimizer,
                weight_decay=recipe.weight_decay, max_length=recipe.sequence_len, packing=recipe.sample_packing,
                gradient_checkpointing=recipe.gradient_checkpointing, precision=precision, seed=recipe.seed,
                logging_steps=recipe.logging_steps)
    tok.save_pretrained(recipe.output_dir)
    if held_out is not None and evaluate:
        run.eval_metrics = score_answers(run.model, tok, held_out)
    return run


def describe(recipe: Recipe) -> str:
    """One line per setting that matters, for the CLI and the notebooks."""
    data = ", ".join(f"{d.path} [{d.split}]" for d in recipe.datasets)
    steps = f"max_steps {recipe.max_steps}" if recipe.max_steps > 0 else f"{recipe.num_epochs:g} epoch(s)"
    quant = "4-bit" if recipe.load_in_4bit else "8-bit" if recipe.load_in_8bit else "full precision"
    return (f"{recipe.base_model} ({quant}) on {data}\n"
            f"LoRA r={recipe.lora_r} alpha={recipe.lora_alpha:g} dropout={recipe.lora_dropout:g} "
            f"targets={recipe.lora_target_modules}\n"
            f"{steps}, batch {recipe.micro_batch_size}×{recipe.gradient_accumulation_steps}, "
            f"lr {recipe.learning_rate:g} ({recipe.lr_scheduler}), {recipe.optimizer}, seq {recipe.sequence_len}, "
            f"packing {recipe.sample_packing} → {recipe.output_dir}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit.sft", description="Run an SFT recipe (YAML).")
    parser.add_argument("recipe", help="path to a recipe, e.g. recipes/sft_smoke.yml")
    parser.add_argument("--check", action="store_true", help="validate the recipe and stop (no download)")
    parser.add_argument("--max-steps", type=int, help="override max_steps")
    parser.add_argument("--output-dir", help="override output_dir")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (("max_steps", args.max_steps), ("output_dir", args.output_dir)) if v is not None}
    try:
        recipe = load_recipe(args.recipe, **overrides)
        print(describe(recipe))
        if args.check:
            print("recipe OK")
            return 0
        run = run_recipe(recipe)
    except (RecipeError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"trained {len(run.history)} logged steps in {run.seconds:.1f} s; final loss {run.final_loss:.4f}; "
          f"adapter saved to {run.output_dir}")
    if run.eval_metrics:
        print("held-out: " + ", ".join(f"{k} {v:.4f}" for k, v in run.eval_metrics.items()))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
