"""Tool-call metrics by hand: exact calls, partial arguments, missed and spurious calls,
bodies that do not parse, and how argument values are normalised."""

from __future__ import annotations

import pytest

from dialogtune.data.tool_calls import ToolCall
from dialogtune.evaluate.calls import CallTurn, call_metrics, normal_value, pair_calls

BALANCE = ToolCall("CheckBalance", {"account_type": "checking"})
TRANSFER = ToolCall("TransferMoney", {"account_type": "checking", "amount": "1630",
                                      "recipient_account_name": "Amir"})


def test_exact_calls_score_one_everywhere():
    m = call_metrics([CallTurn([BALANCE], [BALANCE]), CallTurn([TRANSFER], [TRANSFER]),
                      CallTurn([], [])])
    for key in ("call_precision", "call_recall", "name_accuracy", "arguments_exact_match",
                "argument_f1", "json_valid_rate", "schema_valid_rate"):
        assert m[key] == 1.0, key
    assert (m["scored_turns"], m["reference_call_turns"], m["reference_calls"]) == (3, 2, 2)


def test_partial_arguments_give_micro_f1_and_no_exact_match():
    wrong_amount = ToolCall("TransferMoney", {"account_type": "checking", "amount": "1600",
                                              "recipient_account_name": "Amir",
                                              "recipient_account_type": "savings"})
    m = call_metrics([CallTurn([TRANSFER], [wrong_amount]), CallTurn([BALANCE], [BALANCE])])
    # pairs: transfer tp 2 (account_type, name), fn 1 (amount), fp 2 (amount, type);
    # balance tp 1 → F1 = 2*3 / (2*3 + 2 + 1)
    assert m["argument_f1"] == pytest.approx(6 / 9)
    assert m["name_accuracy"] == 1.0 and m["arguments_exact_match"] == 0.5
    errors = m["argument_errors"]
    assert errors["by_key"] == {
        "TransferMoney.amount": {"missing": 0, "wrong": 1, "extra": 0},
        "TransferMoney.recipient_account_type": {"missing": 0, "wrong": 0, "extra": 1}}
    assert errors["examples"] == [{"function": "TransferMoney", "key": "amount",
                                   "reference": "1630", "generated": "1600"}]


def test_argument_errors_rank_keys_by_how_often_they_go_wrong():
    no_date = ToolCall("Reserve", {"time": "18:30"})
    reference = ToolCall("Reserve", {"time": "18:30", "date": "2019-03-01"})
    late = ToolCall("Reserve", {"time": "6:30 pm", "date": "2019-03-01"})
    m = call_metrics([CallTurn([reference], [no_date]), CallTurn([reference], [no_date]),
                      CallTurn([reference], [late])])
    assert list(m["argument_errors"]["by_key"].items()) == [
        ("Reserve.date", {"missing": 2, "wrong": 0, "extra": 0}),
        ("Reserve.time", {"missing": 0, "wrong": 1, "extra": 0})]
    assert m["argument_errors"]["examples"][0]["generated"] == "6:30 pm"


def test_missed_call_counts_wrong_and_spurious_call_lowers_precision():
    m = call_metrics([CallTurn([TRANSFER], []),            # missed
                      CallTurn([BALANCE], [BALANCE]),      # right
                      CallTurn([], [BALANCE])])            # spurious, where words were due
    assert m["call_recall"] == 0.5 and m["call_precision"] == 0.5
    assert m["name_accuracy"] == 0.5 and m["arguments_exact_match"] == 0.5
    # the missed call's 3 pairs are false negatives; the spurious call is not in F1
    assert m["argument_f1"] == pytest.approx(2 * 1 / (2 * 1 + 0 + 3))


def test_wrong_function_earns_no_argument_credit():
    m = call_metrics([CallTurn([TRANSFER], [ToolCall("CheckBalance", dict(TRANSFER.arguments))])])
    assert m["name_accuracy"] == 0.0 and m["argument_f1"] == 0.0
    assert m["call_recall"] == 1.0  # it did call, just the wrong function


def test_invalid_json_is_a_call_attempt_that_does_not_parse():
    m = call_metrics([CallTurn([BALANCE], [], invalid=1),
                      CallTurn([TRANSFER], [TRANSFER], schema_errors=1)])
    assert m["json_valid_rate"] == 0.5 and m["schema_valid_rate"] == 0.0
    assert m["call_recall"] == 1.0 and m["name_accuracy"] == 0.5
    assert m["call_attempts"] == 2 and m["calls_parsed"] == 1


def test_rates_are_none_with_nothing_to_count():
    m = call_metrics([CallTurn([], [])])
    assert m["call_precision"] is None and m["name_accuracy"] is None
    assert m["json_valid_rate"] is None and m["argument_f1"] is None


def test_argument_values_are_normalised_numbers_booleans_whitespace_not_case():
    assert normal_value("1630") == normal_value(1630) == normal_value(" 1630.0 ")
    assert normal_value(True) == normal_value("True") == "true"
    assert normal_value("San  Jose ") == "San Jose" != normal_value("san jose")
    assert normal_value({"b": 1, "a": 2}) == normal_value({"a": 2, "b": 1})
    assert normal_value("$1,630") != normal_value("1630")  # the schema's format decides
    reference = ToolCall("TransferMoney", {"amount": "1630"})
    assert call_metrics([CallTurn([reference], [ToolCall("TransferMoney", {"amount": 1630})])]
                        )["arguments_exact_match"] == 1.0


def test_calls_pair_by_name_whatever_their_order():
    pairs, missed, extra = pair_calls([BALANCE, TRANSFER], [TRANSFER, BALANCE, BALANCE])
    assert [(r.name, g.name) for r, g in pairs] == [("CheckBalance", "CheckBalance"),
                                                    ("TransferMoney", "TransferMoney")]
    assert missed == [] and [c.name for c in extra] == ["CheckBalance"]
