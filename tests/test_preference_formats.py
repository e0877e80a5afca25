"""preference.formats: the Hub's preference forms as conversational rows with an explicit prompt, equal to what
TRL's extract_prompt cuts; hh-rlhf's plain dialogues parsed turn by turn; anything else named by row and field."""

import pytest
from trl.data_utils import extract_prompt

from coursekit.chat import DataError
from coursekit.preference import arithmetic_preference_rows, check_preference_rows, explicit_prompt_rows, hh_messages
from coursekit.standin.datasets import ultrafeedback_rows


def _hh(*turns):
    """An hh-rlhf text from (speaker, words) turns."""
    return "".join(f"\n\n{speaker}: {words}" for speaker, words in turns)


def test_ultrafeedbacks_form_becomes_what_trls_extract_prompt_cuts_with_the_scores_kept():
    rows = ultrafeedback_rows(40, seed=0)
    out = explicit_prompt_rows(rows)
    for row, mine in zip(rows, out):
        assert {k: mine[k] for k in ("prompt", "chosen", "rejected")} == extract_prompt(row)
        assert (mine["score_chosen"], mine["score_rejected"]) == (row["score_chosen"], row["score_rejected"])
    assert check_preference_rows(out) == ("conversational", "explicit")


def test_a_multi_turn_hh_dialogue_keeps_every_shared_turn_in_the_prompt():
    shared = [("Human", "Hi"), ("Assistant", "Hello! How can I help?"), ("Human", "What is 2 + 2?")]
    row = {"chosen": _hh(*shared, ("Assistant", "4")), "rejected": _hh(*shared, ("Assistant", "5, I think."))}
    (out,) = explicit_prompt_rows([row])
    assert [m["role"] for m in out["prompt"]] == ["user", "assistant", "user"], out["prompt"]
    assert out["prompt"][1]["content"] == "Hello! How can I help?"
    assert out["chosen"] == [{"role": "assistant", "content": "4"}]
    assert out["rejected"] == [{"role": "assistant", "content": "5, I think."}]


def test_hh_dialogues_that_part_before_the_last_turn_keep_the_rest_as_the_answers():
    row = {"chosen": _hh(("Human", "Hi"), ("Assistant", "Hello."), ("Human", "Bye"), ("Assistant", "Bye!")),
           "rejected": _hh(("Human", "Hi"), ("Assistant", "Go away."))}
    (out,) = explicit_prompt_rows([row])
    assert out["prompt"] == [{"role": "user", "content": "Hi"}]
    assert [m["content"] for m in out["chosen"]] == ["Hello.", "Bye", "Bye!"]


def test_hh_text_parses_markers_with_and_without_a_space_after_the_colon():
    assert hh_messages("\n\nHuman:Hi\n\nAssistant: Yo") == [{"role": "user", "content": "Hi"},
                                                          {"role": "assistant", "content": "Yo"}]


@pytest.mark.parametrize("text", ["Human: Hi\n\nAssistant: Yo", "Preamble\n\nHuman: Hi\n\nAssistant: Yo",
                                  "no markers at all"])
def test_plain_text_that_is_not_an_hh_dialogue_is_named_by_row_and_field(text):
    rows = [{"chosen": _hh(("Human", "Hi"), ("Assistant", "Yo")), "rejected": _hh(("Human", "Hi"), ("Assistant", "No"))},
            {"chosen": _hh(("Human", "Hi"), ("Assistant", "Yo")), "rejected": text}]
    with pytest.raises(DataError, match=r"^row 1: field 'rejected' is plain text but not an hh-rlhf dialogue"):
        explicit_prompt_rows(rows)


def test_answers_whose_shared_turns_end_with_the_assistant_are_refused():
    row = {"chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"},
                      {"role": "user", "content": "A"}],
           "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"},
                        {"role": "user", "content": "B"}]}
    with pytest.raises(DataError, match=r"^row 0: 'chosen' and 'rejected' share 2 messages, which do not end with a user"):
        explicit_prompt_rows([row])


def test_answers_that_share_nothing_are_refused():
    row = {"chosen": [{"role": "assistant", "content": "4"}], "rejected": [{"role": "assistant", "content": "5"}]}
    with pytest.raises(DataError, match=r"share 0 messages") as caught:
        explicit_prompt_rows([row])
    assert caught.value.field == "prompt", caught.value.field


def test_rows_with_an_explicit_prompt_come_back_as_they_are_but_still_checked():
    rows = arithmetic_preference_rows(5, seed=1)
    assert explicit_prompt_rows(rows) == rows
    bad = [*rows[:2], {**rows[2], "chosen": []}]
    with pytest.raises(DataError, match=r"^row 2: field 'chosen' is empty"):
        explicit_prompt_rows(bad)


def test_a_single_dict_or_no_rows_is_refused():
    with pytest.raises(ValueError, match="non-empty list of rows"):
        explicit_prompt_rows({"chosen": "a", "rejected": "b"})
    with pytest.raises(ValueError, match="non-empty list of rows"):
        explicit_prompt_rows([])
