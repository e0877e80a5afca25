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
    ({"messages": "hello"}, "messages"),  # a string, not a list of messages
    ({"messages": ["hello"]}, "messages[0]"),  # a message that is not a dict
    ({"question": "x"}, ""),  # no known form: the index is still named
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


def test_error_messages_say_what_is_wrong_with_the_field():
    def message(row, **kwargs):
        with pytest.raises(chat.DataError) as err:
            chat.to_messages(row, **kwargs)
        return str(err.value)

    assert message({"messages": []}) == "row 0: field 'messages' must be a non-empty list of messages"
    assert message({"messages": [{"content": "hi"}]}) == (  # no role at all: says None, not the string 'None'
        "row 0: field 'messages[0].role' is None; valid roles: system, user, assistant")
    assert message({"prompt": "2 + 2 ="}) == message({"prompt": "2 + 2 ="}, index=0)  # index defaults to row 0
    with pytest.raises(chat.DataError) as err:
        chat.detect_format({"instruction": "Add."})  # detect_format's index defaults to 0 too
    assert err.value.index == 0 and err.value.field == "output" and str(err.value).startswith("row 0:")


def test_an_unknown_format_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown format 'sharegpt'\. Valid formats: auto, messages, "
                                         r"prompt_completion, alpaca\."):
        chat.to_messages({"messages": CHAT}, fmt="sharegpt")


def test_system_is_added_only_when_the_row_has_none():
    assert chat.to_messages({"messages": CHAT}, system="Be verbose.") == CHAT  # the row's own system stays
    assert chat.to_messages({"messages": CHAT[1:]}, system="Be verbose.") == [
        {"role": "system", "content": "Be verbose."}, *CHAT[1:]]


ROWS = [{"prompt": f"q{i % 6}", "completion": f"a{i}"} for i in range(18)]  # 6 distinct prompts


def test_held_out_split_refuses_to_leave_no_prompt_for_training():
    with pytest.raises(ValueError, match="only 6 distinct prompts; hold out fewer than 6"):
        chat.held_out_split(ROWS, 6)
    with pytest.raises(ValueError, match="only 1 distinct prompts"):
        chat.held_out_split(ROWS[:1], 1)
    with pytest.raises(ValueError, match="only 0 distinct prompts"):
        chat.held_out_split([], 1)
    train, test = chat.held_out_split(ROWS, 5)  # the most it can hold out: one prompt left to train on
    assert len(test) == 5 and len({r["prompt"] for r in train}) == 1 and len(train) == 3
    assert chat.held_out_split([], 0) == ([], [])  # holding out nothing from nothing is fine
    assert chat.held_out_split(ROWS, 0) == (ROWS, [])


def test_held_out_split_picks_the_test_prompts_by_random_seed():
    def test_prompts(**kwargs):
        return [r["prompt"] for r in chat.held_out_split(ROWS, 2, **kwargs)[1]]

    assert test_prompts() == test_prompts(seed=0)  # the default random seed is 0
    assert test_prompts(seed=0) != test_prompts(seed=1)
    assert len({tuple(test_prompts(seed=s)) for s in range(5)}) > 1  # a random choice, not the first prompts
    assert test_prompts(seed=3) == test_prompts(seed=3)


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


# ---------------------------------------------------------------- templates and the mask's edge cases
@pytest.fixture(scope="module")
def bare_tok():
    """The tiny tokenizer with no chat template (a base model's), loaded fresh so the shared one is untouched."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(assets.tiny_model_path("llama"))
    tok.chat_template = None
    return tok


QA = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]


def test_render_chat_defaults_to_no_generation_prompt(tiny_llama):
    tok = tiny_llama[1]
    assert chat.render_chat(tok, QA) == "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n"
    assert chat.render_chat(tok, QA[:1], add_generation_prompt=True) == (
        "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n")


def test_a_tokenizer_without_a_template_falls_back_to_plain(bare_tok):
    assert chat.render_chat(bare_tok, QA) == "<|endoftext|>2+2?4<|im_end|>"  # bos, prompt, reply, eos
    assert chat.render_chat(bare_tok, QA) == chat.render_chat(bare_tok, QA, template="plain")
    assert chat.trained_text(bare_tok, chat.tokenize_chat(bare_tok, QA)) == ["4<|im_end|>"]
    assert chat.render_chat(bare_tok, QA, template="chatml").startswith("<|im_start|>user\n2+2?<|im_end|>")
    with pytest.raises(ValueError, match="'tokenizer' asked for, but this tokenizer has no chat template"):
        chat.render_chat(bare_tok, QA, template="tokenizer")


def test_a_literal_template_is_used_as_given(tiny_llama):
    literal = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
    assert chat.render_chat(tiny_llama[1], QA, template=literal) == "[user] 2+2?\n[assistant] 4\n"


# Qwen3-style: an assistant turn starts with an empty think block; the generation prompt has it only when
# enable_thinking is false.
THINK_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['role'] == 'assistant' %}<think>\n\n</think>\n\n"
    "{% endif %}{{ m['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)


def test_generation_prompt_matches_training_text_for_a_thinking_template(tiny_llama):
    tok = tiny_llama[1]
    prompt = chat.render_chat(tok, QA[:1], add_generation_prompt=True, template=THINK_TEMPLATE)
    assert prompt.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")  # enable_thinking=False
    assert chat.render_chat(tok, QA, template=THINK_TEMPLATE).startswith(prompt)
    ex = chat.tokenize_chat(tok, QA, template=THINK_TEMPLATE)
    assert chat.trained_text(tok, ex) == ["4<|im_end|>"]


def test_no_end_of_turn_token_is_trained_when_the_template_has_none(tiny_llama):
    tok = tiny_llama[1]
    literal = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    text = chat.render_chat(tok, QA, template=literal)
    assert chat.assistant_spans(tok, QA, text, template=literal) == [(text.index(": 4") + 2, text.index(": 4") + 3)]
    assert chat.trained_text(tok, chat.tokenize_chat(tok, QA, template=literal)) == ["4"]


def test_a_reply_that_is_the_template_s_own_role_name_is_found_in_its_turn(tiny_llama):
    tok = tiny_llama[1]
    messages = [{"role": "user", "content": "Which role are you?"}, {"role": "assistant", "content": "assistant"}]
    text = chat.render_chat(tok, messages)
    start = text.index("<|im_start|>assistant\n") + len("<|im_start|>assistant\n")
    assert chat.assistant_spans(tok, messages, text) == [(start, start + len("assistant<|im_end|>"))]
    assert chat.trained_text(tok, chat.tokenize_chat(tok, messages)) == ["assistant<|im_end|>"]


def test_a_reply_at_the_very_start_of_the_text_is_trained_whole(tiny_llama):
    tok = tiny_llama[1]  # plain text for a base model without a bos: an empty prompt, so the reply starts at 0
    literal = "{% for m in messages %}{{ m['content'] }}{% if m['role'] == 'assistant' %}<|im_end|>{% endif %}{% endfor %}"
    messages = [{"role": "user", "content": ""}, {"role": "assistant", "content": "Hello!\n"},
                {"role": "user", "content": "Hi."}, {"role": "assistant", "content": "Yes?"}]
    text = chat.render_chat(tok, messages, template=literal)
    assert chat.assistant_spans(tok, messages, text, template=literal) == [(0, 17), (text.index("Yes?"), len(text))]
    ex = chat.tokenize_chat(tok, messages, template=literal)
    assert ex["labels"][0] != -100
    assert chat.trained_text(tok, ex) == ["Hello!\n<|im_end|>", "Yes?<|im_end|>"]


def test_a_template_that_trims_the_reply_still_masks_it(tiny_llama):
    tok = tiny_llama[1]
    trimming = chat.CHATML_TEMPLATE.replace("{{ message['content'] }}", "{{ message['content'] | trim }}")
    messages = [{"role": "user", "content": "What is 7 * 22?"}, {"role": "assistant", "content": " 154 \n"}]
    assert chat.trained_text(tok, chat.tokenize_chat(tok, messages, template=trimming)) == ["154<|im_end|>"]


def test_a_template_that_changes_the_reply_is_an_error(tiny_llama):
    shouting = chat.CHATML_TEMPLATE.replace("{{ message['content'] }}", "{{ message['content'] | upper }}")
    with pytest.raises(ValueError, match="does not render assistant message 1 verbatim"):
        chat.tokenize_chat(tiny_llama[1], QA[:1] + [{"role": "assistant", "content": "yes"}], template=shouting)


def test_input_ids_are_the_rendered_text_even_for_a_tokenizer_that_adds_a_bos():
    from tokenizers.processors import TemplateProcessing
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(assets.tiny_model_path("llama"))  # like Llama 3's: encoding adds a bos
    tok.backend_tokenizer.post_processor = TemplateProcessing(
        single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", tok.bos_token_id)])
    assert tok("4")["input_ids"][0] == tok.bos_token_id
    ex = chat.tokenize_chat(tok, QA, template="plain")  # the template already starts with the bos
    assert tok.decode(ex["input_ids"]) == "<|endoftext|>2+2?4<|im_end|>"  # one bos, not two
    assert chat.trained_text(tok, ex) == ["4<|im_end|>"]


def test_masked_html_colours_trained_tokens_green_and_shows_newlines(tiny_llama):
    tok = tiny_llama[1]
    ex = chat.tokenize_chat(tok, QA)
    html = chat.masked_html(tok, ex)
    n_trained = sum(lab != -100 for lab in ex["labels"])
    assert html.count("background:#c8f7c5") == n_trained and html.count("background:#eee") == len(ex["labels"]) - n_trained
    assert "\n" not in html and "↵<br>" in html and "&lt;|im_start|&gt;" in html


def test_prepare_dataset_refuses_no_rows(tiny_llama):
    with pytest.raises(ValueError, match="prepare_dataset got no rows"):
        chat.prepare_dataset([], tiny_llama[1])


def test_a_conversation_the_assistant_opens_trains_both_replies(tiny_llama):
    """A greeting before the user's first turn: no prompt precedes it, so it is found from the start (this
    used to end in transformers' "Cannot apply chat template to an empty conversation")."""
    tok = tiny_llama[1] if isinstance(tiny_llama, tuple) else tiny_llama
    messages = [{"role": "assistant", "content": "Hello! Ask me a sum."},
                {"role": "user", "content": "2 + 2?"}, {"role": "assistant", "content": "4"}]
    enc = chat.tokenize_chat(tok, messages)
    trained = tok.decode([i for i, lab in zip(enc["input_ids"], enc["labels"]) if lab != -100])
    assert "Hello! Ask me a sum." in trained and "4" in trained and "2 + 2?" not in trained, trained
