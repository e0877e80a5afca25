"""coursekit.evals.answers: scoring held-out answers in one forward pass equals the full computation."""

import torch

from coursekit import chat
from coursekit.evals import answers


def test_score_answers_equals_the_full_logits_computation(tiny_llama):
    """score_answers computes logits only where a trained token is predicted: the same numbers as all logits."""
    from coursekit.data import load_jsonl

    model, tok = tiny_llama
    examples = list(chat.prepare_dataset(list(load_jsonl("units"))[:6], tok))
    got = answers.score_answers(model, tok, examples, batch_size=4)
    nll, hits, exact, count = [], 0, 0, 0
    with torch.no_grad():
        for e in examples:  # one row at a time, every logit, no padding
            logits = model(input_ids=torch.tensor([e["input_ids"]])).logits[0, :-1]
            target = torch.tensor(e["labels"][1:])
            keep = target != -100
            nll += torch.nn.functional.cross_entropy(logits[keep], target[keep], reduction="none").tolist()
            hit = logits.argmax(-1)[keep] == target[keep]
            hits, exact, count = hits + int(hit.sum()), exact + int(hit.all()), count + int(keep.sum())
    want = {"loss": sum(nll) / count, "token_accuracy": hits / count, "exact_match": exact / len(examples)}
    # float32 losses of ~10 averaged over ~20 terms: padding and batching move them by ~1e-6
    assert abs(got["loss"] - want["loss"]) < 1e-4 * want["loss"], (got, want)
    assert (got["token_accuracy"], got["exact_match"]) == (want["token_accuracy"], want["exact_match"]), (got, want)
