"""Chat evaluation metrics, export (merged / adapter / GGUF) and the CLI end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from helpers import DIALOGUES, write_jsonl
from dialogtune.cli import main
from dialogtune.config import load_config
from dialogtune.data.encode.chat import render, render_prompt_ids
from dialogtune.errors import DialogtuneError
from dialogtune.evaluate.chat import generation_samples
from dialogtune.evaluate.metrics import (corpus_bleu, lcs_length, mean_rouge_l, rouge_l,
                                         slot_value_recall)
from dialogtune.export.hf import export_run
from dialogtune.inference.chat import ChatPredictor
from dialogtune.pipeline import evaluate_run, train_run


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, folder, data) -> Path:
    run = tmp_path_factory.mktemp("runs") / "lora"
    train_run(load_config(None, ["train.max_steps=4", "train.lr=3e-2", "train.num_threads=1"],
                          task="chat", output=str(run),
                          **{"data.train": str(data), "model.name": folder}))
    return run


# --- pure metric functions ---------------------------------------------------------------------


def test_rouge_l_and_lcs_by_hand():
    assert lcs_length("a b c b d a b".split(), "b d c a b a".split()) == 4
    # LCS("the cat sat on the mat", "the cat is on the mat") = 5 words: P=5/6, R=5/6
    assert rouge_l("The cat sat on the mat.", "the cat is on the mat") == pytest.approx(5 / 6)
    assert rouge_l("", "") == 1.0 and rouge_l("x", "") == 0.0 and rouge_l("a b", "c d") == 0.0
    assert mean_rouge_l(["a b", "c"], ["a b", "d"]) == pytest.approx(0.5)


def test_bleu_is_sacrebleu_corpus_bleu():
    refs = ["your balance is 120 dollars today", "sending 20 dollars to amir now"]
    assert corpus_bleu(refs, refs) == pytest.approx(100.0)
    assert 0 < corpus_bleu(["your balance is 120 dollars", "sending money"], refs) < 100
    assert corpus_bleu([], []) == 0.0


def test_slot_value_recall_counts_values_the_reference_repeats():
    recall, counted = slot_value_recall(
        ["Sending 20 dollars to amir.", "Done."],
        ["Sending $20 to Amir now.", "Booked at Olive Garden for 7 pm."],
        [["Amir", "$20", "Bob"], ["olive garden", "7 pm", "Amir"]])
    # counted: Amir, $20 (first), olive garden, 7 pm (second); found: amir only
    assert (recall, counted) == (0.25, 4)
    assert slot_value_recall(["x"], ["y"], [["z"]]) == (None, 0)


def test_generation_samples_take_trained_turns_and_prior_slot_values(data):
    from dialogtune.data.formats import read_dialogues

    samples = generation_samples(read_dialogues(data), 4)
    assert [s.reference for s in samples] == [
        "Your balance is 120 dollars.", "Sending 20 dollars to Amir now.",
        "Goodbye and have a nice day.", "Your phone bill of 30 dollars is paid."]
    assert samples[1].slot_values == ["Amir"] and samples[1].context[-1]["role"] == "user"


# --- evaluation on a run ------------------------------------------------------------------------


@torch.no_grad()
def independent_nll(model, tokenizer, dialogues: list[dict]) -> tuple[float, int]:
    """NLL over assistant tokens found from the ChatML markers alone (not dialogtune's mask)."""
    start = tokenizer("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    total, count = 0.0, 0
    for record in dialogues:
        messages = [{"role": m["role"], "content": m["content"]} for m in record["messages"]]
        ids = tokenizer(render(tokenizer, messages), add_special_tokens=False)["input_ids"]
        weights = [m.get("weight", 1) for m in record["messages"] if m["role"] == "assistant"]
        log_probs = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0], -1)
        turn, i = 0, 0
        while i < len(ids):
            if ids[i:i + len(start)] == start:
                j = i + len(start)
                while ids[j - 1] != end:  # through the reply's end-of-turn token
                    if weights[turn]:
                        total -= float(log_probs[j - 1, ids[j]])
                        count += 1
                    j += 1
                turn, i = turn + 1, j
            else:
                i += 1
    return total, count


def test_eval_perplexity_is_exp_of_independent_mean_nll(lora_run, data, tmp_path):
    out = tmp_path / "eval" / "metrics.json"
    metrics = evaluate_run(lora_run, str(data), out)
    predictor = ChatPredictor.from_run(lora_run)
    total, count = independent_nll(predictor.model, predictor.tokenizer, DIALOGUES)
    assert metrics["assistant_tokens"] == count
    assert metrics["nll"] == pytest.approx(total / count, rel=1e-5)
    assert metrics["perplexity"] == pytest.approx(math.exp(total / count), rel=1e-5)
    assert json.loads(out.read_text())["perplexity"] == metrics["perplexity"]
    for key in ("bleu", "rouge_l", "slot_value_recall", "generated_turns"):
        assert key in metrics
    side = Path(metrics["side_by_side"]).read_text()
    assert "| # | context | reference | base reply | tuned reply |" in side
    assert "Sending 20 dollars to Amir now." in side


def test_eval_base_scores_the_starting_model(lora_run, folder, data, tmp_path):
    tuned = evaluate_run(lora_run, str(data), tmp_path / "tuned.json")
    base = evaluate_run(lora_run, str(data), tmp_path / "base.json", base=True)
    predictor = ChatPredictor.from_model(folder)
    total, count = independent_nll(predictor.model, predictor.tokenizer, DIALOGUES)
    assert base["model"] == "base" and base["nll"] == pytest.approx(total / count, rel=1e-5)
    assert tuned["nll"] < base["nll"]  # 4 steps at a high rate fit the tiny data set


# --- export ---------------------------------------------------------------------------------


@torch.no_grad()
def test_merged_export_loads_in_plain_transformers(lora_run, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    info = export_run(lora_run, tmp_path / "merged", merge=True)
    assert info["kind"] == "merged-model" and "model.safetensors" in info["files"]
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "merged")
    run = ChatPredictor.from_run(lora_run)
    ids = torch.tensor([render_prompt_ids(tokenizer, DIALOGUES[0]["messages"][:2])])
    assert ids.tolist()[0] == run.prompt_ids(DIALOGUES[0]["messages"][:2]).tolist()[0]
    torch.testing.assert_close(model(input_ids=ids).logits, run.model(input_ids=ids).logits,
                               atol=1e-6, rtol=1e-5)
    out = model.generate(input_ids=ids, max_new_tokens=12, do_sample=False)
    plain = tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
    assert plain == run.chat(DIALOGUES[0]["messages"][:2], max_new_tokens=12)


@torch.no_grad()
def test_adapter_export_is_a_peft_folder(lora_run, folder, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    info = export_run(lora_run, tmp_path / "adapter")
    assert info["kind"] == "peft-adapter"
    assert {"adapter_config.json", "adapter_model.safetensors"} <= set(info["files"])
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(folder),
                                      tmp_path / "adapter").eval()
    run = ChatPredictor.from_run(lora_run)
    ids = run.prompt_ids(DIALOGUES[2]["messages"][:1])
    torch.testing.assert_close(model(input_ids=ids).logits, run.model(input_ids=ids).logits,
                               atol=1e-5, rtol=1e-5)


def test_export_refusals_are_clear(lora_run, tmp_path):
    with pytest.raises(DialogtuneError, match="convert_hf_to_gguf"):
        export_run(lora_run, tmp_path / "m.gguf", gguf=True)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(DialogtuneError, match="not empty"):
        export_run(lora_run, tmp_path / "busy", merge=True)


# --- CLI end to end -----------------------------------------------------------------------------


def test_cli_train_eval_generate_export(folder, data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--task", "chat", "--data", str(data), "--model", folder,
                 "--output", str(run), "--set", "train.max_steps=2",
                 "--set", "train.num_threads=1"]) == 0
    assert json.loads((run / "run.json").read_text())["strategy"] == "lora"
    assert main(["eval", str(run), "--data", str(data), "--output",
                 str(tmp_path / "metrics.json")]) == 0
    assert "perplexity" in json.loads((tmp_path / "metrics.json").read_text())
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [
        {"id": "p1", "messages": [{"role": "user", "content": "What is my balance?"}]}])
    assert main(["generate", str(run), "--data", str(prompts), "--output",
                 str(tmp_path / "out.jsonl"), "--max-new-tokens", "5"]) == 0
    record = json.loads((tmp_path / "out.jsonl").read_text())
    assert record["id"] == "p1" and record["messages"][-1]["role"] == "assistant"
    assert record["messages"][-1]["content"] == record["reply"]
    assert main(["export", str(run), "--merge", "--output", str(tmp_path / "hf")]) == 0
    assert (tmp_path / "hf" / "model.safetensors").exists()
    assert main(["export", str(run), "--gguf", "--output", str(tmp_path / "g")]) == 2
    assert "GGUF export works for runs on the embedded" in capsys.readouterr().err


def test_cli_chat_session_streams_remembers_and_resets(folder, monkeypatch, capsys):
    inputs = iter(["What is my balance?", "And now?", "/reset", "/exit"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(inputs))
    seen = []
    original = ChatPredictor.stream

    def spy(self, messages, *args, **kwargs):
        seen.append([m["role"] for m in messages])
        return original(self, messages, *args, **kwargs)

    monkeypatch.setattr(ChatPredictor, "stream", spy)
    assert main(["chat", folder, "--max-new-tokens", "3"]) == 0
    assert seen == [["user"], ["user", "assistant", "user"]]
    assert "conversation cleared" in capsys.readouterr().out


def test_cli_data_inspect(data, folder, capsys):
    assert main(["data", "inspect", str(data), "--model", folder, "--index", "1"]) == 0
    out = capsys.readouterr().out
    assert "[[Goodbye and have a nice day.<|im_end|>]]" in out and "trained" in out


def test_gguf_rotary_permutation_is_what_transformers_undoes():
    import numpy as np
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    from dialogtune.export.gguf import permute_rotary

    weights = np.random.default_rng(0).normal(size=(24, 8)).astype(np.float32)
    for heads in (3, 6):
        permuted = permute_rotary(weights, heads)
        assert not np.array_equal(permuted, weights)
        restored = LlamaTensorProcessor()._reverse_permute_weights(permuted, heads, heads)
        np.testing.assert_array_equal(restored, weights)


def test_dequantized_gguf_model_loses_its_quantized_marks(folder):
    """The embedded model is cached from GGUF as float32 but its config still says GGUF:
    trainers refuse it and exports would claim GGUF. Other quantization configs stay."""
    from dialogtune.models.lm import as_plain_model
    from dialogtune.models.loading import load_causal_lm

    model, _, _ = load_causal_lm(folder)
    model.config.quantization_config = {"quant_method": "gguf", "dequantize": False}
    assert not hasattr(as_plain_model(model).config, "quantization_config")
    model.config.quantization_config = {"quant_method": "bitsandbytes"}
    assert as_plain_model(model).config.quantization_config == {"quant_method": "bitsandbytes"}
