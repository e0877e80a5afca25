"""Lesson 01's exercises (pretraining losses): the next-token loss, BERT's 80/10/10 corruption, a loss in nats.

Each check runs the student's answer on tiny tensors and compares it with the finished copy in
``coursekit.objectives`` (``causal_lm_loss``, and ``mlm_mask`` replayed from the same random draws) or with
the computed truth, naming the value found, the value expected and, for a known slip, which slip it is::

    >>> from coursekit import objectives
    >>> q1.check(objectives.causal_lm_loss)
    ✓ q1: correct. Right on a full batch and on one with -100 labels (padding): 2.0028 and 2.0342 nats.
    >>> q3.check(math.log2(49152))
    ✗ q3: 15.585 is log2(49152): that is the loss in bits. A loss in nats uses the natural log (ln).
      Hint: A uniform guess gives every token p = 1/V; the loss of the right token is -ln p.
    >>> q2.grade(...).status
    'not attempted'
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from coursekit.exercises import Exercise, Wrong, expect_close
from coursekit.objectives import IGNORE_INDEX, causal_lm_loss, mlm_mask

__all__ = ["EXERCISES", "V_SMOLLM2", "bert_corrupt", "next_token_loss", "q1", "q2", "q3"]


# ---------------------------------------------------------------- q1: the next-token loss
def next_token_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    pred = logits[:, :-1, :]  # (B, T-1, V): position t ...
    target = labels[:, 1:]  # (B, T-1): ... predicts token t + 1
    return F.cross_entropy(pred.reshape(-1, pred.shape[-1]), target.reshape(-1), ignore_index=-100)


def _loss_no_shift(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:  # each position scores its own token
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))


def _loss_shift_backwards(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:  # t predicts t - 1
    return F.cross_entropy(logits[:, 1:].reshape(-1, logits.shape[-1]), labels[:, :-1].reshape(-1))


def _loss_counts_padding(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:  # -100 read as token 0
    logp = logits[:, :-1].log_softmax(-1)
    return -logp.gather(-1, labels[:, 1:].clamp_min(0).unsqueeze(-1)).mean()


def _loss_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:  # summed, not averaged
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), reduction="sum")


def _q1_batches() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 7, generator=g)  # (B, T, V) = (2, 5, 7)
    ids = torch.randint(7, (2, 5), generator=g)
    padded = ids.clone()
    padded[1, 3:] = IGNORE_INDEX  # row 1 is 3 tokens long, then padding
    return [("a full batch", logits, ids), ("one with -100 labels (padding)", logits, padded)]


SLIPS = [(_loss_no_shift, "the loss without the shift: position t scored against its own token t, which it can see"),
         (_loss_shift_backwards, "the shift the wrong way round: position t scored against token t - 1"),
         (_loss_counts_padding, "a loss that counts the -100 positions (as token 0): they must be skipped, "
                                "and the mean taken over the real targets only"),
         (_loss_sum, "the sum of the per-token losses: the loss is their mean")]


def _check_next_token_loss(fn: Any) -> str:
    found = []
    for what, logits, labels in _q1_batches():
        want = causal_lm_loss(logits, labels).item()
        got = fn(logits.clone(), labels.clone())
        if got is None:
            raise Wrong(f"on {what} next_token_loss returned None: compute the loss and return it ({want:.4f} here).")
        if isinstance(got, torch.Tensor) and got.numel() != 1:
            raise Wrong(f"on {what} your loss is a tensor of shape {tuple(got.shape)}; expected one number, "
                        f"the mean over all the targets ({want:.4f}).")
        value = float(got)
        if math.isclose(value, want, rel_tol=1e-4, abs_tol=1e-5):
            found.append(value)
            continue
        for slip, said in SLIPS:
            if math.isclose(value, slip(logits, labels).item(), rel_tol=1e-4, abs_tol=1e-5):
                raise Wrong(f"on {what} your loss is {value:.4f}; expected {want:.4f}. {value:.4f} is {said}.")
        before = " (it was right on the full batch)" if found else ""
        raise Wrong(f"on {what} (logits {tuple(logits.shape)}) your loss is {value:.4f}; expected {want:.4f}{before}.")
    return f"Right on a full batch and on one with -100 labels (padding): {found[0]:.4f} and {found[1]:.4f} nats."


q1 = Exercise(
    "q1", "next_token_loss(logits, labels): the mean cross-entropy of position t's logits against token t + 1, "
          "skipping labels that are -100. logits is (B, T, V), labels (B, T).",
    checker=_check_next_token_loss,
    hint_text="Drop the last position of logits ([:, :-1]) and the first of labels ([:, 1:]), flatten both to "
              "(N, V) and (N,), and call F.cross_entropy(..., ignore_index=-100).",
    reference=next_token_loss, wrong=(_loss_no_shift, _loss_shift_backwards, _loss_counts_padding, _loss_sum))


# ---------------------------------------------------------------- q2: BERT's 80/10/10 corruption
MASK_ID, VOCAB, SPECIALS = 3, 40, (0, 1, 2)  # [MASK]; a 40-token vocabulary; [PAD], [CLS], [SEP]


def bert_corrupt(input_ids: torch.Tensor, draw: torch.Tensor, how: torch.Tensor, random_ids: torch.Tensor,
                 mask_id: int, special_ids: list[int], prob: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    special = torch.isin(input_ids, torch.tensor(special_ids))
    selected = (draw < prob) & ~special  # (B, T): 15 % of the ordinary tokens
    inputs = input_ids.clone()  # never change the caller's ids
    inputs[selected & (how < 0.8)] = mask_id  # 80 % of them: [MASK]
    to_random = selected & (how >= 0.8) & (how < 0.9)  # 10 %: a random token; the last 10 % stay
    inputs[to_random] = random_ids[to_random]
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, -100))  # the loss sees selected only
    return inputs, labels


def _corrupt_labels_everywhere(input_ids: torch.Tensor, draw: torch.Tensor, how: torch.Tensor,
                               random_ids: torch.Tensor, mask_id: int, special_ids: list[int],
                               prob: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    inputs, _ = bert_corrupt(input_ids, draw, how, random_ids, mask_id, special_ids, prob)
    return inputs, input_ids.clone()  # the loss would train on every token


def _corrupt_mask_all(input_ids: torch.Tensor, draw: torch.Tensor, how: torch.Tensor, random_ids: torch.Tensor,
                      mask_id: int, special_ids: list[int], prob: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    return bert_corrupt(input_ids, draw, torch.zeros_like(how), random_ids, mask_id, special_ids, prob)  # 100 %


def _corrupt_specials_too(input_ids: torch.Tensor, draw: torch.Tensor, how: torch.Tensor, random_ids: torch.Tensor,
                          mask_id: int, special_ids: list[int],
                          prob: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    return bert_corrupt(input_ids, draw, how, random_ids, mask_id, [], prob)


def _corrupt_in_place(input_ids: torch.Tensor, draw: torch.Tensor, how: torch.Tensor, random_ids: torch.Tensor,
                      mask_id: int, special_ids: list[int], prob: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    selected = (draw < prob) & ~torch.isin(input_ids, torch.tensor(special_ids))
    inputs = input_ids  # no clone: the [MASK]s overwrite the originals that the labels need
    inputs[selected & (how < 0.8)] = mask_id
    to_random = selected & (how >= 0.8) & (how < 0.9)
    inputs[to_random] = random_ids[to_random]
    return inputs, torch.where(selected, input_ids, torch.full_like(input_ids, -100))


def _q2_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, float, int]:
    """The ids, the three random draws of ``mlm_mask`` (in its order, from one generator), prob, and the random seed."""
    ids = torch.tensor([[1, 17, 9, 25, 9, 30, 12, 2, 0, 0], [1, 5, 38, 21, 7, 21, 11, 8, 14, 2]])
    seed = 0  # its draws give every case: 6 [MASK], 1 random, 2 unchanged, and 4 special tokens drawn
    g = torch.Generator().manual_seed(seed)
    draw, how = torch.rand(ids.shape, generator=g), torch.rand(ids.shape, generator=g)
    random_ids = torch.randint(VOCAB, ids.shape, generator=g, dtype=ids.dtype)
    return ids, draw, how, random_ids, 0.5, seed


def _where_in(got: torch.Tensor, want: torch.Tensor, name: str) -> str:
    at = tuple(int(i) for i in torch.nonzero(got != want)[0])
    return f"{name} differ at {int((got != want).sum())} position(s); the first is {at}: yours {int(got[at])}, " \
           f"expected {int(want[at])}"


def _check_corrupt(fn: Any) -> str:
    ids, draw, how, random_ids, prob, seed = _q2_case()
    want_inputs, want_labels = mlm_mask(ids, (MASK_ID, VOCAB, list(SPECIALS)), prob=prob,
                                        generator=torch.Generator().manual_seed(seed))
    given = ids.clone()
    out = fn(given, draw.clone(), how.clone(), random_ids.clone(), MASK_ID, list(SPECIALS), prob)
    if not (isinstance(out, (tuple, list)) and len(out) == 2 and all(isinstance(t, torch.Tensor) for t in out)):
        raise Wrong(f"bert_corrupt returned {type(out).__name__}; expected a tuple (inputs, labels) of two tensors.")
    inputs, labels = out
    for got, name in ((inputs, "inputs"), (labels, "labels")):
        if got.shape != ids.shape:
            raise Wrong(f"{name} has shape {tuple(got.shape)}; expected {tuple(ids.shape)}, the shape of input_ids.")
    if not torch.equal(given, ids):
        raise Wrong(f"your function changed input_ids in place ({_where_in(given, ids, 'they')}): "
                    f"clone before writing [MASK]s, or the labels lose the original ids.")
    if not torch.equal(labels, want_labels):
        special = torch.isin(ids, torch.tensor(SPECIALS))
        kept = (want_labels == IGNORE_INDEX) & (labels != IGNORE_INDEX)  # labelled, but not selected
        if (kept & ~special).any():
            at = tuple(int(i) for i in torch.nonzero(kept & ~special)[0])
            raise Wrong(f"labels differ at {int((labels != want_labels).sum())} position(s), e.g. {at}: yours "
                        f"{int(labels[at])}, expected -100. It is not selected (draw {draw[at]:.2f} >= {prob}), so "
                        f"its label is -100 and the loss skips it.")
        if kept.any():
            at = tuple(int(i) for i in torch.nonzero(kept & (draw == draw[kept].min()))[0])  # the clearest one
            raise Wrong(f"position {at} holds the special token {int(ids[at])} and you selected it "
                        f"(draw {draw[at]:.2f} < {prob}): special tokens are never selected.")
        raise Wrong(f"{_where_in(labels, want_labels, 'labels')}: a selected position's label is its original id.")
    if not torch.equal(inputs, want_inputs):
        at = tuple(int(i) for i in torch.nonzero(inputs != want_inputs)[0])
        rule = "become [MASK]" if how[at] < 0.8 else "take random_ids' token" if how[at] < 0.9 else "stay as it was"
        raise Wrong(f"{_where_in(inputs, want_inputs, 'inputs')}: it is selected with how = {how[at]:.2f}, "
                    f"so it should {rule}.")
    n = int((want_labels != IGNORE_INDEX).sum())
    return f"Your corruption equals coursekit.objectives.mlm_mask replayed from the same draws ({n} tokens selected)."


q2 = Exercise(
    "q2", "bert_corrupt(input_ids, draw, how, random_ids, mask_id, special_ids, prob): select the non-special "
          "positions with draw < prob; of those, how < 0.8 becomes mask_id, 0.8 <= how < 0.9 takes random_ids' "
          "token, the rest stay. Return (inputs, labels): labels hold the original id where selected, -100 elsewhere.",
    checker=_check_corrupt,
    hint_text="special = torch.isin(input_ids, torch.tensor(special_ids)); selected = (draw < prob) & ~special. "
              "Write into inputs = input_ids.clone() with boolean masks; labels = torch.where(selected, input_ids, "
              "torch.full_like(input_ids, -100)).",
    reference=bert_corrupt,
    wrong=(_corrupt_labels_everywhere, _corrupt_mask_all, _corrupt_specials_too, _corrupt_in_place))


# ---------------------------------------------------------------- q3: a loss in nats
V_SMOLLM2 = 49_152  # SmolLM2's vocabulary


def _check_uniform(value: Any) -> str:
    truth = math.log(V_SMOLLM2)
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise Wrong(f"{value!r} is not a number; expected a loss in nats, about ten.") from None
    known = {math.log2(V_SMOLLM2): f"log2({V_SMOLLM2}): that is the loss in bits. A loss in nats uses the natural "
                                   f"log (ln)",
             math.log10(V_SMOLLM2): f"log10({V_SMOLLM2}): a loss in nats uses the natural log (ln)",
             1 / V_SMOLLM2: f"1/{V_SMOLLM2}, the probability of the right token; the loss is -ln of it",
             -truth: f"ln(1/{V_SMOLLM2}) = ln p; the loss is -ln p, which is positive",
             float(V_SMOLLM2): "the vocabulary size itself; the loss is -ln of the probability 1/V"}
    for k, said in known.items():
        if math.isclose(v, k, rel_tol=1e-3):
            raise Wrong(f"{v:.6g} is {said}.")
    expect_close(v, truth, "your loss", rel=1e-3)
    return (f"ln({V_SMOLLM2:,}) = {truth:.2f} nats. A loss above it (section 5's first target) is worse "
            "than guessing blindly.")


q3 = Exercise(
    "q3", f"A model that gives each of SmolLM2's {V_SMOLLM2:,} tokens the same probability: what is its loss, "
          "in nats, on any next token? (a number)",
    checker=_check_uniform,
    hint_text="A uniform guess gives every token p = 1/V; the loss of the right token is -ln p.",
    reference=math.log(V_SMOLLM2), wrong=(math.log2(V_SMOLLM2), 1 / V_SMOLLM2, -math.log(V_SMOLLM2), 10.0))

EXERCISES = [q1, q2, q3]
