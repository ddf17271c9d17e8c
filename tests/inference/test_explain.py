"""``dialogtune explain``: attributions that add up, words that map back to the text,
occlusion equal to deleting by hand, reply log-probabilities equal to a plain forward,
escaped HTML and terminal output, the CLI's JSON and its one-line errors."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
import torch

from dialogtune.cli import main
from dialogtune.config import load_config
from dialogtune.data.encode.chat import render
from dialogtune.errors import DialogtuneError
from dialogtune.inference.chat import ChatPredictor
from dialogtune.inference.explain import explain_run
from dialogtune.inference.explain.attribution import Encoded, faithfulness, probabilities_of
from dialogtune.inference.explain.intents import explain_classifier
from dialogtune.inference.explain.render import html_page, print_explanation
from dialogtune.inference.explain.reply import explain_reply
from dialogtune.inference.intent import load_classifier
from dialogtune.pipeline import train_run
from helpers import tiny_intent_run, tiny_nlu_run

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def intent_run(tmp_path_factory, tiny_bert):
    return tiny_intent_run(tmp_path_factory.mktemp("explain_intent"), tiny_bert)


@pytest.fixture(scope="module")
def classifier(intent_run):
    return load_classifier(intent_run)


@pytest.fixture(scope="module")
def chat_run(tmp_path_factory, folder, data):
    run = tmp_path_factory.mktemp("explain_chat") / "lora"
    train_run(load_config(None, ["train.max_steps=2", "train.num_threads=1"], task="chat",
                          output=str(run), **{"data.train": str(data), "model.name": folder}))
    return run


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


# --- intent / NLU attributions ------------------------------------------------------------


def test_ig_attributions_add_up_to_the_probability_change(classifier):
    result = explain_classifier(classifier, "please block my stolen card", "ig")
    tokenizer, model = classifier.tokenizer, classifier.model
    encoded = Encoded.of(tokenizer, result["text"], 64)
    baseline = [i if k not in encoded.text_positions else tokenizer.pad_token_id
                for k, i in enumerate(encoded.ids)]
    assert baseline[0] == tokenizer.cls_token_id and baseline[-1] == tokenizer.sep_token_id
    target = classifier.labels.index[result["target"]]
    ends = probabilities_of(model, [encoded.ids, baseline], tokenizer.pad_token_id)[:, target]
    total = sum(result["attributions"])
    assert abs(total - (ends[0] - ends[1])) <= result["ig"]["delta"] + 1e-5
    assert result["ig"]["delta"] < 1e-2 and any(abs(a) > 1e-4 for a in result["attributions"])
    assert result["tokens"] == ["please", "block", "my", "stolen", "card"]  # no [CLS]/[SEP]
    assert sum(w["attribution"] for w in result["words"]) == pytest.approx(total, abs=1e-6)


def test_words_map_back_to_exact_substrings_of_accented_emoji_and_cjk_text(classifier):
    text = "my  Café card 😀 北京 lost!"  # "card😀" would be one [UNK] word for WordPiece
    result = explain_classifier(classifier, text, "ig")
    words = [w["word"] for w in result["words"]]
    assert words == ["my", "Café", "card", "😀", "北", "京", "lost", "!"]
    for word in result["words"]:
        assert text[word["start"]:word["end"]] == word["word"]
    assert "[UNK]" in result["tokens"]  # café, the emoji and the CJK are not in the vocabulary
    for token, span in zip(result["tokens"], result["token_spans"]):
        assert token == "[UNK]" or text[span[0]:span[1]].lower() == token


def test_occlusion_equals_deleting_each_word_by_hand(classifier):
    text = "my card was lost"
    result = explain_classifier(classifier, text, "occlusion")
    target = classifier.labels.index[result["target"]]
    whole = classifier.probabilities([text])[0, target]
    for word in result["words"]:
        shorter = text[:word["start"]] + text[word["end"]:]
        by_hand = whole - classifier.probabilities([shorter])[0, target]
        assert word["attribution"] == pytest.approx(by_hand, abs=1e-5)
    assert result["tokens"] == ["my", "card", "was", "lost"]
    assert result["attributions"] == pytest.approx([w["attribution"] for w in result["words"]],
                                                   abs=1e-6)  # one token per word here


def test_a_word_that_changes_nothing_gets_zero(intent_run):
    """A head with zero weights answers the same whatever the words: every deletion (and
    every IG path) leaves the probability unchanged."""
    predictor = load_classifier(intent_run)
    with torch.no_grad():
        predictor.model.classifier.weight.zero_()
        predictor.model.classifier.bias.zero_()
    for method in ("occlusion", "ig"):
        result = explain_classifier(predictor, "my card was lost", method)
        assert result["confidence"] == pytest.approx(1 / 3)
        assert all(abs(a) < 1e-6 for a in result["attributions"]), method
        assert all(abs(w["attribution"]) < 1e-6 for w in result["words"]), method


def test_comprehensiveness_deletes_the_top_words(classifier):
    text = "please transfer money to my friend"
    result = explain_classifier(classifier, text, "occlusion")
    encoded = Encoded.of(classifier.tokenizer, text, 64)
    target = classifier.labels.index[result["target"]]
    scores = np.array([w["attribution"] for w in result["words"]])
    measured = faithfulness(classifier.model, encoded, target, 0, scores, (1, 2))
    # deleting occlusion's top word is exactly its score; deleting every word but the
    # top one is sufficiency
    assert measured["comprehensiveness"][0] == pytest.approx(scores.max(), abs=1e-6)
    top = result["words"][int(scores.argmax())]
    alone = classifier.probabilities([top["word"]])[0, target]
    assert measured["sufficiency"][0] == pytest.approx(result["confidence"] - alone, abs=1e-5)


def test_target_intent_and_nlu_slots(classifier, tmp_path_factory):
    result = explain_classifier(classifier, "my card was lost", "ig", target_intent="balance")
    assert result["target"] == "balance" and result["target_probability"] < 1
    with pytest.raises(DialogtuneError, match="not an intent of this run"):
        explain_classifier(classifier, "my card", "ig", target_intent="nope")
    nlu = load_classifier(tiny_nlu_run(tmp_path_factory.mktemp("explain_nlu")))
    result = explain_classifier(nlu, "send fifty dollars to amir", "ig")
    assert result["intent"] == "transfer" and result["ig"]["delta"] < 1e-2
    assert {(s["slot"], s["value"]) for s in result["slots"]} >= {("recipient", "amir")}


# --- chat replies -------------------------------------------------------------------------


def test_reply_log_probs_equal_a_plain_forward(folder):
    predictor = ChatPredictor.from_model(folder)
    text, reply = "What is my balance?", "Your balance is 120 dollars, José 😀."
    result = explain_reply(predictor, text, reply, top_k=3)
    tokenizer = predictor.tokenizer
    user = [{"role": "user", "content": text}]
    prompt = tokenizer(render(tokenizer, user, generation_prompt=True))["input_ids"]
    full = tokenizer(render(tokenizer, user + [{"role": "assistant", "content": reply}]))
    full = full["input_ids"]
    with torch.no_grad():
        logits = predictor.model(input_ids=torch.tensor([full])).logits[0]
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    n = len(result["logprobs"])
    expected = [float(log_probs[p - 1, full[p]]) for p in range(len(prompt), len(prompt) + n)]
    assert result["logprobs"] == pytest.approx(expected, abs=1e-4)
    # the end of turn is scored; an emoji's byte pieces show as the emoji, not as "�"
    assert "".join(result["tokens"]) == reply + "<|im_end|>"
    lowest = sorted(expected)[:3]
    assert [row["logprob"] for row in result["least_likely"]] == pytest.approx(lowest, abs=1e-4)
    for row in result["least_likely"]:
        assert result["tokens"][row["index"]] == row["token"]


def test_chat_run_generates_and_scores_its_reply_through_the_cli(chat_run, capsys):
    assert main(["explain", str(chat_run), "What is my balance?", "--json",
                 "--max-new-tokens", "6", "--top-k", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"tokens", "logprobs", "attributions", "least_likely", "reply", "intent"} <= set(
        result)
    assert result["intent"] is None and result["attributions"] == result["logprobs"]
    assert len(result["tokens"]) == len(result["logprobs"]) >= 1  # at least the end of turn
    assert len(result["least_likely"]) == min(2, len(result["tokens"]))
    reply = "Your balance is 120 dollars."
    assert main(["explain", str(chat_run), "What is my balance?", "--reply", reply, "--json",
                 "--top-k", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["reply"] == reply and "".join(result["tokens"]) == reply + "<|im_end|>"
    assert len(result["least_likely"]) == 2
    assert main(["explain", str(chat_run), "hi", "--method", "ig"]) == 2
    assert "--method and --target-intent are for intent" in error_line(capsys)


# --- showing it ---------------------------------------------------------------------------


def test_html_escapes_user_text_and_is_written(intent_run, tmp_path):
    page = tmp_path / "deep" / "explain.html"
    text = '<script>alert("x")</script> lost card'
    result = explain_run(intent_run, text, "occlusion", html=page)
    written = page.read_text(encoding="utf-8")
    assert "<script" not in written and "&lt;script&gt;alert(&quot;x&quot;)" in written
    assert written == html_page(result) and written.startswith("<!DOCTYPE html>")
    assert "background:rgb(" in written


def test_terminal_shows_rich_markup_as_typed(classifier):
    from rich.console import Console

    result = explain_classifier(classifier, "[bold]card[/bold] lost", "occlusion")
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    print_explanation(result, console)
    shown = console.file.getvalue()
    plain = re.sub(r"\x1b\[[0-9;]*m", "", shown)
    assert "[bold]card[/bold] lost" in plain and "\x1b[30;" in shown  # coloured, as typed
    assert f"intent {result['intent']}" in shown


def test_cli_json_shape_and_one_line_errors(intent_run, tmp_path, capsys):
    assert main(["explain", str(intent_run), "block my card", "--json", "--method", "ig"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"tokens", "attributions", "intent", "confidence", "method", "words"} <= set(result)
    assert len(result["tokens"]) == len(result["attributions"]) == 3
    assert result["method"] == "ig" and result["intent"] in {"balance", "card_lost",
                                                             "transfer"}
    assert main(["explain", str(tmp_path / "missing"), "hi"]) == 2
    assert "not a dialogtune run" in error_line(capsys)
    assert main(["explain", str(intent_run), "  "]) == 2
    assert "TEXT is empty" in error_line(capsys)
    assert main(["explain", str(intent_run), "hi", "--method", "shap"]) == 2
    assert "unknown method 'shap'" in error_line(capsys)
    assert main(["explain", str(intent_run), "hi", "--reply", "x"]) == 2
    assert "--reply is for chat runs" in error_line(capsys)
