"""coursekit.evals.answers: generated answers equal greedy decoding; scores equal the full computation."""

import copy

import pytest
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


def test_score_answers_loss_equals_the_models_own_shifted_label_loss(tiny_llama):
    """The model's own ``labels=`` loss shifts targets by one: unshifted targets would score other tokens."""
    from coursekit.data import load_jsonl

    model, tok = tiny_llama
    examples = list(chat.prepare_dataset(list(load_jsonl("units"))[:3], tok))
    for e in examples:
        ids, labels = torch.tensor([e["input_ids"]]), torch.tensor([e["labels"]])
        with torch.no_grad():
            want = model(input_ids=ids, labels=labels).loss.item()
            # the same tokens scored unshifted (position t predicting token t) differ by far more than the margin
            logits = model(input_ids=ids).logits[0]
            keep = labels[0] != -100
            unshifted = torch.nn.functional.cross_entropy(logits[keep], labels[0][keep]).item()
        got = answers.score_answers(model, tok, [e])["loss"]
        assert abs(got - want) < 1e-5 * want, (got, want)
        assert abs(unshifted - want) > 1e-3, (unshifted, want)


def _greedy(model, tok, prompt, max_new_tokens):
    """Greedy decoding by hand, one prompt, no padding: the argmax token, appended, until EOS."""
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    start = ids.shape[1]
    with torch.no_grad():
        for _ in range(max_new_tokens):
            nxt = model(input_ids=ids).logits[0, -1].argmax()
            ids = torch.cat([ids, nxt.view(1, 1)], dim=1)
            if nxt.item() == tok.eos_token_id:
                break
    return tok.decode(ids[0, start:], skip_special_tokens=True).strip()


@pytest.fixture(scope="module")
def talkative_llama(tiny_llama):
    """A copy of the tiny Llama with large random weights: its greedy replies are non-empty strings
    (the packaged one's are newlines only, which strip to nothing)."""
    model, tok = tiny_llama
    model = copy.deepcopy(model)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.5)
    return model, tok


def test_generate_answers_equals_greedy_decoding_by_hand_and_answer_accuracy_scores_it(talkative_llama):
    from coursekit.data import load_jsonl

    model, tok = talkative_llama
    rows = list(load_jsonl("units"))[:3]
    got = answers.generate_answers(model, tok, rows, max_new_tokens=6, batch_size=2)  # batched, left-padded
    prompts = answers._prompts(tok, rows, "auto")
    want = [_greedy(model, tok, p, 6) for p in prompts]
    assert got == want and all(want), (got, want)
    out = answers.answer_accuracy(model, tok, rows, max_new_tokens=6)
    refs = [chat.to_messages(r)[-1]["content"] for r in rows]
    assert (out["predictions"], out["references"]) == (want, refs), out
    assert out["exact_match"] == sum(w == r for w, r in zip(want, refs)) / 3, out
    # rows whose reference reply is the model's own greedy answer score 1.0
    echo = [{"messages": chat.to_messages(r)[:-1] + [{"role": "assistant", "content": w}]} for r, w in zip(rows, want)]
    assert answers.answer_accuracy(model, tok, echo, max_new_tokens=6)["exact_match"] == 1.0
