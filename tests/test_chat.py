"""coursekit.chat: row forms, templates and assistant-only labels (tiny models and SmolLM2's tokenizer)."""

import pytest

from coursekit import assets, chat

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
    assert chat.to_messages({"messages": CHAT}) == CHAT
    share = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}
    assert chat.to_messages(share, fields_map={"messages": "conversations"}) == [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]


def test_prompt_completion_rows_with_field_mapping_and_system():
    row = {"synopsis": "A fox.", "short_story": "Once upon a time..."}
    out = chat.to_messages(row, fields_map={"prompt": "synopsis", "completion": "short_story"}, system="Tell stories.")
    assert out == [{"role": "system", "content": "Tell stories."}, {"role": "user", "content": "A fox."},
                   {"role": "assistant", "content": "Once upon a time..."}]


def test_alpaca_rows_join_instruction_and_input():
    assert chat.to_messages({"instruction": "Add.", "input": "2 + 2", "output": "4"}) == [
        {"role": "user", "content": "Add.\n\n2 + 2"}, {"role": "assistant", "content": "4"}]
    assert chat.to_messages({"instruction": "Say hi.", "input": "", "output": "hi"})[0]["content"] == "Say hi."
    assert chat.detect_format({"instruction": "x", "output": "y"}) == "alpaca"


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
    with pytest.raises(chat.DataError) as err:
        chat.convert_rows(rows)
    assert err.value.index == 2 and err.value.field == field
    assert str(err.value).startswith("row 2:") and repr(field.split(".")[0])[1:-1] in str(err.value)


def test_a_row_of_no_known_form_lists_the_forms():
    with pytest.raises(chat.DataError, match="prompt_completion .*alpaca"):
        chat.to_messages({"question": "x"})


def test_held_out_split_shares_no_prompt_with_train():
    rows = [{"prompt": f"q{i % 5}", "completion": "a"} for i in range(20)]
    train, test = chat.held_out_split(rows, 2, seed=0)
    assert len(test) == 2 and len(train) == 12
    assert not {r["prompt"] for r in test} & {r["prompt"] for r in train}


# ---------------------------------------------------------------- loss only on the assistant
@pytest.mark.parametrize("which", ["tiny", "smollm2"])
def test_unmasked_tokens_are_exactly_the_replies(which, tiny_llama, smol_tok):
    tok = tiny_llama[1] if which == "tiny" else smol_tok
    ex = chat.tokenize_chat(tok, CHAT)
    assert chat.trained_text(tok, ex) == ["4<|im_end|>", "It is 6.<|im_end|>"]  # each reply + end of turn
    assert len(ex["input_ids"]) == len(ex["labels"])
    without_eot = chat.tokenize_chat(tok, CHAT, end_of_turn=False)
    assert chat.trained_text(tok, without_eot) == ["4", "It is 6."]


def test_plain_template_trains_on_the_completion_and_eos(smol_tok):
    ex = chat.tokenize_chat(smol_tok, [{"role": "user", "content": "Price is $"},
                                      {"role": "assistant", "content": "12.00"}], template="plain")
    assert smol_tok.decode(ex["input_ids"]) == "<|im_start|>Price is $12.00<|im_end|>"  # bos, prompt, reply, eos
    assert chat.trained_text(smol_tok, ex) == ["12.00<|im_end|>"]


def test_prepared_dataset_trains_on_units_answers(tiny_llama):
    from coursekit.data import load_jsonl

    rows = list(load_jsonl("units"))[:5]
    ds = chat.prepare_dataset(rows, tiny_llama[1])
    assert ds.column_names == ["input_ids", "labels"]
    assert [chat.trained_text(tiny_llama[1], e) for e in ds] == [[r["messages"][-1]["content"] + "<|im_end|>"] for r in rows]
    html = chat.masked_html(tiny_llama[1], ds[0])
    assert html.count("<span") == len(ds[0]["input_ids"]) and "#c8f7c5" in html


@pytest.mark.parametrize("messages, replies", [
    ([{"role": "user", "content": "Reply with 42 and nothing else: 42"}, {"role": "assistant", "content": "42"}],
     ["42"]),
    ([{"role": "user", "content": "Say yes."}, {"role": "assistant", "content": "yes"},
      {"role": "user", "content": "Again: yes?"}, {"role": "assistant", "content": "yes"}], ["yes", "yes"]),
])
def test_the_mask_covers_each_assistant_turn_even_when_a_user_turn_holds_its_text(tiny_llama, messages, replies):
    tok = tiny_llama[1]
    text = chat.render_chat(tok, messages)
    turns = [text.index(f"<|im_start|>assistant\n{r}", 0 if i == 0 else text.index("<|im_start|>assistant\n") + 1)
             for i, r in enumerate(replies)]  # where each assistant turn's reply really is
    expected = [(t + len("<|im_start|>assistant\n"), t + len("<|im_start|>assistant\n") + len(r) + len("<|im_end|>"))
                for t, r in zip(turns, replies)]
    spans = chat.assistant_spans(tok, messages, text)
    assert spans == expected, f"spans {spans} vs the assistant turns {expected} in {text!r}"
    assert text.index(replies[0]) < expected[0][0], "the reply's text occurs earlier, in a user turn"
    ex = chat.tokenize_chat(tok, messages)
    assert chat.trained_text(tok, ex) == [f"{r}<|im_end|>" for r in replies]
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    trained = [i for i, lab in enumerate(ex["labels"]) if lab != -100]
    inside = [i for i, (s, e) in enumerate(enc["offset_mapping"]) if any(s < b and e > a for a, b in expected)]
    assert trained == inside, f"trained token positions {trained} vs the assistant turns' tokens {inside}"
