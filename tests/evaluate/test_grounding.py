"""Value extraction and grounding by hand: amounts, times, dates and phone numbers in
their usual spellings, names, and replies judged against the dialogue and tool results."""

from __future__ import annotations

import json

import pytest

from dialogtune.evaluate.grounding import GroundingTurn, grounding_metrics
from dialogtune.data.values import (extract_values, is_stated, known_keys, result_texts,
                                        spoken_as_digits)

RESULT = json.dumps([{"account_type": "checking", "balance": "5118.77"}])
RESTAURANT = json.dumps([{"restaurant_name": "Bird Dog", "phone_number": "650-656-8180",
                          "time": "18:30", "date": "2019-03-01", "city": "Palo Alto"}])


def keys_of(text: str) -> set[str]:
    return {key for value in extract_values(text) for key in value.keys}


@pytest.mark.parametrize("a, b", [("$5,118.77", "5118.77"), ("1630", "$1,630"),
                                  ("$1,630.00", "1630"), ("6:30 pm", "18:30"),
                                  ("6 pm", "18:00"), ("12 am", "00:00"),
                                  ("11 in the morning", "11 am"),
                                  ("(650) 656-8180", "650-656-8180"),
                                  ("+1 650 656 8180", "6506568180"),
                                  ("March 1st", "2019-03-01"), ("the 1st of March", "3/1")])
def test_spellings_of_one_value_share_a_key(a, b):
    assert keys_of(a) & keys_of(b), (a, b, keys_of(a), keys_of(b))


def test_different_values_do_not_meet():
    assert not keys_of("$5,118.77") & keys_of("5118.7")
    assert not keys_of("6:30 pm") & keys_of("6:30 am")
    assert not keys_of("March 1st") & keys_of("March 2nd")
    assert not keys_of("650-656-8180") & keys_of("650-656-8181")


def test_kinds_do_not_read_each_other():
    """A phone number is not also three numbers, a time not two."""
    values = extract_values("Call 408-971-8523 at 6:30 pm on 2019-03-01 for $20.")
    assert [v.kind for v in values] == ["phone", "date", "time", "number"]


def test_names_are_capitalised_uncommon_words_not_starting_a_sentence():
    names = [v.text for v in extract_values(
        "I booked Bird Dog in Palo Alto. Sure, Monday works. Thanks I'm glad.")]
    assert names == ["Bird Dog", "Palo Alto"]
    assert [v.text for v in extract_values("Bird Dog is open.")] == ["Dog"]


def test_known_text_reads_spoken_numbers_and_days():
    assert spoken_as_digits("send eight hundred and five dollars") == "send 805 dollars"
    assert spoken_as_digits("half past seven") == "7:30"
    known = known_keys(["Make it for one in the afternoon on the 14th of this month."])
    assert all(is_stated(v, known) for v in extract_values("At 1 pm on March 14th."))


def test_tool_results_are_read_leaf_by_leaf():
    assert sorted(result_texts(RESULT)) == ["5118.77", "checking"]
    assert result_texts("not json") == ["not json"]
    known = known_keys(result_texts(RESTAURANT))
    reply = "Bird Dog, 650-656-8180, is booked at 6:30 pm on March 1st."
    assert all(is_stated(v, known) for v in extract_values(reply))


def turn(generated: str, reference: str = "Done.", said=("What is my balance?",),
         results=(RESULT,)) -> GroundingTurn:
    return GroundingTurn(generated, reference, list(said),
                         [t for r in results for t in result_texts(r)])


def test_hallucinated_phone_number_is_flagged():
    m = grounding_metrics([turn("Call us at 415-555-0199.")])
    assert m["hallucinated_value_rate"] == 1.0 and m["values_hallucinated"] == 1
    assert m["hallucinated_examples"][0]["kind"] == "phone"


def test_value_from_tool_result_is_not_flagged():
    m = grounding_metrics([turn("Your checking balance is $5,118.77.")])
    assert m["hallucinated_value_rate"] == 0.0 and m["replies_with_values"] == 1


def test_value_the_user_said_is_not_flagged_but_an_invented_amount_is():
    m = grounding_metrics([turn("Sending $800 to Amir.", said=["Send eight hundred to Amir"]),
                           turn("I've pulled up your balance, and it's $125.00.")])
    assert m["hallucinated_replies"] == 1 and m["hallucinated_value_rate"] == 0.5
    assert m["replies"] == 2 and m["values_stated"] == 3


def test_result_value_recall_counts_result_values_the_reference_states():
    reference = "Your checking has $5,118.77 right now."
    m = grounding_metrics([turn("You have 5118.77 dollars.", reference),
                           turn("I could not find it.", reference),
                           turn("Anything else?", "Anything else?")])
    assert (m["result_values_in_references"], m["result_values_recalled"]) == (2, 1)
    assert m["result_value_recall"] == 0.5


def test_reference_replies_get_the_same_check():
    m = grounding_metrics([turn("Done.", reference="I found 7 restaurants.")])
    assert m["reference_hallucinated_value_rate"] == 1.0 and m["hallucinated_value_rate"] == 0
    assert grounding_metrics([])["hallucinated_value_rate"] is None
