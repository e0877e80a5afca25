"""coursekit.sft: data forms, assistant-only labels, packing, activation memory and precision (tiny models)."""

import pytest
import torch

from coursekit import assets, sft
from coursekit.runtime import Precision

CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "content": "4"},
    {"role": "user", "content": "And 3 + 3?"},
    {"role": "assistant", "content": "It is 6."},
]


@pytest.fixture(scope="module")
def smol_tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(assets.smollm2_path())


# ---------------------------------------------------------------- three forms -> messages
def test_messages_rows_pass_through_and_sharegpt_is_converted():
    assert sft.to_messages({"messages": CHAT}) == CHAT
    share = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}
    assert sft.to_messages(share, fields_map={"messages": "conversations"}) == [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]


def test_prompt_completion_rows_with_field_mapping_and_system():
    row = {"synopsis": "A fox.", "short_story": "Once upon a time..."}
    out = sft.to_messages(row, fields_map={"prompt": "synopsis", "completion": "short_story"}, system="Tell stories.")
    assert out == [{"role": "system", "content": "Tell stories."}, {"role": "user", "content": "A fox."},
                   {"role": "assistant", "content": "Once upon a time..."}]


def test_alpaca_rows_join_instruction_and_input():
    assert sft.to_messages({"instruction": "Add.", "input": "2 + 2", "output": "4"}) == [
        {"role": "user", "content": "Add.\n\n2 + 2"}, {"role": "assistant", "content": "4"}]
    assert sft.to_messages({"instruction": "Say hi.", "input": "", "output": "hi"})[0]["content"] == "Say hi."
    assert sft.detect_format({"instruction": "x", "output": "y"}) == "alpaca"


@pytest.mark.parametrize("row, field", [
    ({"prompt": "2 + 2 ="}, "completion"),
    ({"prompt": "2 + 2 =", "completion": 4}, "completion"),
    ({"instruction": "Add.", "output": ""}, "output"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "bot", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": None}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": "only a question"}]}, "messages"),
])
def test_a_bad_row_names_its_index_and_field(row, field):
    rows = [{"prompt": "a", "completion": "b"}, {"prompt": "c", "completion": "d"}, row]
    with pytest.raises(sft.DataError) as err:
        sft.convert_rows(rows)
    assert err.value.index == 2 and err.value.field == field
    assert str(err.value).startswith("row 2:") and repr(field.split(".")[0])[1:-1] in str(err.value)


def test_a_row_of_no_known_form_lists_the_forms():
    with pytest.raises(sft.DataError, match="prompt_completion .*alpaca"):
        sft.to_messages({"question": "x"})


def test_held_out_split_shares_no_prompt_with_train():
    rows = [{"prompt": f"q{i % 5}", "completion": "a"} for i in range(20)]
    train, test = sft.held_out_split(rows, 2, seed=0)
    assert len(test) == 2 and len(train) == 12
    assert not {r["prompt"] for r in test} & {r["prompt"] for r in train}


# ---------------------------------------------------------------- loss only on the assistant
@pytest.mark.parametrize("which", ["tiny", "smollm2"])
def test_unmasked_tokens_are_exactly_the_replies(which, tiny_llama, smol_tok):
    tok = tiny_llama[1] if which == "tiny" else smol_tok
    ex = sft.tokenize_chat(tok, CHAT)
    assert sft.trained_text(tok, ex) == ["4<|im_end|>", "It is 6.<|im_end|>"]  # each reply + end of turn
    assert len(ex["input_ids"]) == len(ex["labels"])
    without_eot = sft.tokenize_chat(tok, CHAT, end_of_turn=False)
    assert sft.trained_text(tok, without_eot) == ["4", "It is 6."]


def test_plain_template_trains_on_the_completion_and_eos(smol_tok):
    ex = sft.tokenize_chat(smol_tok, [{"role": "user", "content": "Price is $"},
                                      {"role": "assistant", "content": "12.00"}], template="plain")
    assert smol_tok.decode(ex["input_ids"]) == "<|im_start|>Price is $12.00<|im_end|>"  # bos, prompt, reply, eos
    assert sft.trained_text(smol_tok, ex) == ["12.00<|im_end|>"]


def test_prepared_dataset_trains_on_units_answers(tiny_llama):
    from coursekit.data import load_jsonl

    rows = list(load_jsonl("units"))[:5]
    ds = sft.prepare_dataset(rows, tiny_llama[1])
    assert ds.column_names == ["input_ids", "labels"]
    assert [sft.trained_text(tiny_llama[1], e) for e in ds] == [[r["messages"][-1]["content"] + "<|im_end|>"] for r in rows]
    html = sft.masked_html(tiny_llama[1], ds[0])
    assert html.count("<span") == len(ds[0]["input_ids"]) and "#c8f7c5" in html


# ---------------------------------------------------------------- packing keeps examples apart
def test_packing_keeps_examples_apart(tiny_llama, tmp_path):
    from trl import SFTConfig, SFTTrainer

    model, tok = tiny_llama
    ds = sft.prepare_dataset([{"prompt": f"Convert {i} hours to minutes.", "completion": str(60 * i)}
                              for i in range(1, 7)], tok)
    args = SFTConfig(output_dir=str(tmp_path), packing=True, max_length=256, per_device_train_batch_size=1,
                     report_to="none", activation_checkpointing=False, bf16=False,
                     dataloader_pin_memory=False)
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
    batch = next(iter(trainer.get_train_dataloader()))
    pos = batch["position_ids"][0]
    starts = (pos == 0).nonzero().flatten().tolist()
    assert len(starts) > 1, "several examples share one packed row"
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0]
        bounds = [*starts, len(pos)]
        for a, b in zip(bounds, bounds[1:]):  # each example alone gives the same logits: no cross-attention
            alone = model(input_ids=batch["input_ids"][:, a:b]).logits[0]
            torch.testing.assert_close(packed[a:b], alone, atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------- activation memory
def test_gradient_checkpointing_saves_activation_memory(tiny_llama):
    model, tok = tiny_llama
    ex = sft.tokenize_chat(tok, CHAT)
    batch = {"input_ids": torch.tensor([ex["input_ids"]]), "labels": torch.tensor([ex["labels"]])}
    off = sft.saved_activation_bytes(model, batch)
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    try:
        on = sft.saved_activation_bytes(model, batch)
    finally:
        model.activation_checkpointing_disable()
    assert 0 < on < off


# ---------------------------------------------------------------- precision
def test_bf16_on_a_gpu_without_it_falls_back_to_fp16(monkeypatch, capsys):
    monkeypatch.setattr(sft, "pick_precision", lambda device: Precision("fp16", "T4"))
    assert sft.resolve_precision(True, device="cuda").name == "fp16"
    assert len(capsys.readouterr().out.strip().splitlines()) == 1
    assert sft.resolve_precision("auto", device="cuda").name == "fp16"
    monkeypatch.setattr(sft, "pick_precision", lambda device: Precision("bf16", "H100"))
    assert sft.resolve_precision(True, device="cuda").name == "bf16"


def test_fp16_true_wins_over_bf16_auto(monkeypatch):
    monkeypatch.setattr(sft, "pick_precision", lambda device: Precision("bf16", "H100"))
    assert sft.resolve_precision("auto", True, device="cuda").name == "fp16"
    assert sft.resolve_precision("auto", False, device="cuda").name == "bf16"
    assert sft.resolve_precision(False, False, device="cuda").name == "fp32"


def test_score_answers_equals_the_full_logits_computation(tiny_llama):
    """score_answers computes logits only where a trained token is predicted: the same numbers as all logits."""
    from coursekit.data import load_jsonl

    model, tok = tiny_llama
    examples = list(sft.prepare_dataset(list(load_jsonl("units"))[:6], tok))
    got = sft.score_answers(model, tok, examples, batch_size=4)
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
