"""The preference task on a tiny in-process Llama: the reference is the model with its
adapter off, DPO / KTO / ORPO / SimPO steps move the margin the right way, a run starts
from a chat run, resumes exactly, and is evaluated on held-out pairs (and dialogues)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from helpers import DIALOGUES, Interrupt, write_jsonl
from dialogtune.cli import main
from dialogtune.config import StrategyConfig, load_config
from dialogtune.data.encode.preference import collate_preferences, encode_preferences
from dialogtune.data.formats.preference import read_preferences
from dialogtune.errors import ConfigError, DataError, DialogtuneError
from dialogtune.inference.chat import ChatPredictor
from dialogtune.inference.chat_run import load_chat_run
from dialogtune.models.loading import load_causal_lm
from dialogtune.evaluate.preference import score_pairs
from dialogtune.models.preference import METHODS, reference_logps, sequence_logps
from dialogtune.pipeline import evaluate_run, train_run
from dialogtune.strategies import CAUSAL_LM, apply_strategy

pytestmark = pytest.mark.usefixtures("one_thread")

PAIRS = [
    {"messages": [{"role": "user", "content": "What is my balance?"}],
     "chosen": {"role": "assistant", "content": "Your balance is 120 dollars."},
     "rejected": {"role": "assistant", "content": "Your balance is 70 dollars."}},
    {"messages": [{"role": "user", "content": "Send 20 dollars to Amir."},
                  {"role": "assistant", "content": "Sending 20 dollars to Amir now."},
                  {"role": "user", "content": "Pay my phone bill please."}],
     "chosen": {"role": "assistant", "content": "Your phone bill of 30 dollars is paid."},
     "rejected": {"role": "assistant", "content": "Your phone bill of 50 dollars is paid."}},
]
FAST = ("train.num_threads=1", "train.precision=fp32", "train.lr=1e-2", "train.max_steps=6",
        "train.epochs=3", "train.batch_size=2")


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("prefs") / "pairs.jsonl", PAIRS * 2)


def config(run: Path, data: Path, model: str, method: str = "dpo", *overrides: str):
    return load_config(None, [*FAST, *overrides], task="preference", output=str(run),
                       **{"data.train": str(data), "model.name": model,
                          "train.method": method})


def batch_of(tokenizer, data: Path, share: bool = True) -> dict:
    items, _ = encode_preferences(tokenizer, read_preferences(data).preferences)
    return collate_preferences(items, tokenizer.pad_token_id, share)


def test_reference_is_the_base_model_with_the_adapter_off(folder, pairs):
    base, tokenizer, _ = load_causal_lm(folder)
    batch = batch_of(tokenizer, pairs)
    with torch.no_grad():
        expected = sequence_logps(base.eval(), batch).logps
    model = apply_strategy(base, StrategyConfig(name="lora", lora_r=4), CAUSAL_LM).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)  # an adapter that changes the model
        policy = sequence_logps(model, batch).logps
    reference = reference_logps(model, batch).logps
    assert torch.allclose(reference, expected, atol=1e-5)
    assert not torch.allclose(policy, expected, atol=1e-3)


@pytest.mark.parametrize("share", [True, False])
def test_batched_log_probs_equal_one_forward_per_sequence(share, folder, pairs):
    model, tokenizer, _ = load_causal_lm(folder)
    batch = batch_of(tokenizer, pairs, share)
    items, _ = encode_preferences(tokenizer, read_preferences(pairs).preferences)
    sequences = [s for item in items for s, _ in item.sequences()]
    with torch.no_grad():
        batched = sequence_logps(model.eval(), batch)
        for n, sequence in enumerate(sequences):
            logits = model(input_ids=torch.tensor([sequence.input_ids])).logits[0, :-1]
            targets = torch.tensor(sequence.labels[1:])
            picked = logits.log_softmax(-1)[targets != -100].gather(
                1, targets[targets != -100, None])
            assert float(batched.logps[n]) == pytest.approx(float(picked.sum()), abs=1e-4)
            assert int(batched.lengths[n]) == sequence.trained


def test_one_dpo_step_raises_the_margin(folder, pairs):
    from dialogtune.models.preference import pair_margins, preference_loss

    base, tokenizer, _ = load_causal_lm(folder)
    torch.manual_seed(0)
    model = apply_strategy(base, StrategyConfig(name="lora", lora_r=4), CAUSAL_LM).train()
    batch = batch_of(tokenizer, pairs)
    margins = lambda: pair_margins(METHODS["dpo"], sequence_logps(model, batch),  # noqa: E731
                                   reference_logps(model, batch)).detach()
    assert torch.allclose(margins(), torch.zeros(4), atol=1e-5)  # policy = reference at start
    loss = preference_loss(METHODS["dpo"], 0.1)(model, batch)
    assert float(loss) == pytest.approx(-torch.nn.functional.logsigmoid(torch.tensor(0.0)))
    loss.backward()
    grads = [p for p in model.parameters() if p.grad is not None]
    norm = torch.sqrt(sum((p.grad ** 2).sum() for p in grads))
    with torch.no_grad():  # a small plain gradient step: first order, the margin must grow
        for param in grads:
            param -= 1e-2 * param.grad / norm
    assert margins().mean() > 0
    assert float(preference_loss(METHODS["dpo"], 0.1)(model, batch)) < float(loss)


def start_margin(folder: str, data: Path, method: str) -> float:
    """The untrained model's mean margin (0 for DPO and KTO: the policy is the reference)."""
    if METHODS[method].uses_reference:
        return 0.0
    model, tokenizer, _ = load_causal_lm(folder)
    items, _ = encode_preferences(tokenizer, read_preferences(data).preferences)
    margins, _ = score_pairs(model, items, METHODS[method], 0.1, tokenizer.pad_token_id)
    return sum(margins) / len(margins)


@pytest.mark.parametrize("method", ["dpo", "orpo", "simpo"])
def test_training_raises_the_chosen_minus_rejected_margin(method, folder, pairs, tmp_path):
    run = tmp_path / method
    # ORPO at its default λ 0.1 is mostly chosen-reply SFT, which on these pairs (replies a
    # number apart) lifts both replies alike in 6 steps: λ 1 tests its odds-ratio term.
    # DPO's default SFT term does the same (see the test below): its objective alone here.
    extra = {"orpo": ("train.beta=1.0",), "dpo": ("train.sft_weight=0",)}.get(method, ())
    summary = train_run(config(run, pairs, folder, method, *extra))
    assert summary["method"] == method and summary["steps"] == 6
    assert summary["data"]["pairs"] == 4
    metrics = evaluate_run(run, str(pairs), tmp_path / "m.json")
    assert metrics["mean_margin"] > start_margin(folder, pairs, method) + 0.01
    if method == "dpo":
        assert metrics["preference_accuracy"] == 1.0
    assert json.loads((tmp_path / "m.json").read_text())["pairs"] == 4


def chosen_logp(run: Path, data: Path) -> float:
    """The trained model's summed log-probability of the chosen replies."""
    model, tokenizer, _, _ = load_chat_run(run)
    with torch.no_grad():
        return float(sequence_logps(model.eval(), batch_of(tokenizer, data)).chosen.sum())


def test_the_sft_term_keeps_the_chosen_replies_likely(folder, pairs, tmp_path):
    # pairs a number apart: DPO alone may push both replies down as the margin grows
    plain = train_run(config(tmp_path / "dpo", pairs, folder, "dpo", "train.sft_weight=0"))
    rpo = train_run(config(tmp_path / "rpo", pairs, folder, "dpo"))  # DPO's default: 1.0
    assert (plain["sft_weight"], rpo["sft_weight"]) == (0.0, METHODS["dpo"].sft_weight)
    assert METHODS["dpo"].sft_weight == 1.0
    assert chosen_logp(tmp_path / "rpo", pairs) > chosen_logp(tmp_path / "dpo", pairs)
    # the margin still grows, if more slowly: the NLL pulls both replies (a number apart) up
    assert evaluate_run(tmp_path / "rpo", str(pairs))["mean_margin"] > 0


def test_kto_trains_on_unpaired_rows(folder, pairs, tmp_path):
    rows = [{"messages": p["messages"], "completion": p[side], "label": side == "chosen"}
            for p in PAIRS for side in ("chosen", "rejected")] * 2
    unpaired = write_jsonl(tmp_path / "kto.jsonl", rows)
    summary = train_run(config(tmp_path / "kto", unpaired, folder, "kto"))
    assert (summary["data"]["desirable"], summary["data"]["undesirable"]) == (4, 4)
    assert summary["data"]["pairs"] == 0
    metrics = evaluate_run(tmp_path / "kto", str(pairs))
    assert metrics["mean_margin"] > 0 and metrics["preference_accuracy"] == 1.0


def test_pair_methods_refuse_unpaired_rows(folder, tmp_path):
    rows = [PAIRS[0], {"prompt": "Hi", "completion": "Hello.", "label": True}]
    data = write_jsonl(tmp_path / "mixed.jsonl", rows)
    with pytest.raises(DataError, match="--method kto") as caught:
        train_run(config(tmp_path / "r", data, folder, "dpo"))
    assert (caught.value.line, caught.value.field) == (2, "completion")


def test_reference_methods_need_an_adapter(folder, pairs, tmp_path):
    with pytest.raises(ConfigError, match="adapter"):
        train_run(config(tmp_path / "full", pairs, folder, "dpo", "strategy.name=full"))
    summary = train_run(config(tmp_path / "orpo", pairs, folder, "orpo", "strategy.name=full",
                               "train.lr=1e-4"))
    assert summary["strategy"] == "full"


def test_starts_from_a_chat_run_whose_model_is_the_reference(folder, pairs, data, tmp_path):
    sft = tmp_path / "sft"
    train_run(load_config(None, [*FAST], task="chat", output=str(sft),
                          **{"data.train": str(data), "model.name": folder}))
    run = tmp_path / "dpo"
    train_run(config(run, pairs, str(sft), "dpo"))
    merged_sft, tokenizer, _, _ = load_chat_run(sft)
    tuned, _, _, _ = load_chat_run(run, merge=False)
    batch = batch_of(tokenizer, pairs)
    with torch.no_grad():
        expected = sequence_logps(merged_sft.eval(), batch).logps
        assert not torch.allclose(sequence_logps(tuned.eval(), batch).logps, expected,
                                  atol=1e-3)
    assert torch.allclose(reference_logps(tuned, batch).logps, expected, atol=1e-4)
    assert ChatPredictor.from_run(run).chat(DIALOGUES[0]["messages"][:2], max_new_tokens=3)
    with pytest.raises(DialogtuneError, match="--chat-data applies to preference runs"):
        evaluate_run(sft, str(data), chat_data=str(data))
    with pytest.raises(DialogtuneError, match="--base"):
        evaluate_run(run, str(pairs), base=True)
    from dialogtune.export.hf import export_run

    with pytest.raises(DialogtuneError, match="trained on that run's merged weights"):
        export_run(run, tmp_path / "adapter")  # its base would claim the untuned model
    assert export_run(run, tmp_path / "merged", merge=True)["kind"] == "merged-model"


def test_interrupted_preference_run_resumes_to_identical_weights(folder, pairs, tmp_path):
    settings = ("train.save_every_steps=2",)
    train_run(config(tmp_path / "straight", pairs, folder, "dpo", *settings))
    broken = tmp_path / "broken"
    with pytest.raises(KeyboardInterrupt):
        train_run(config(broken, pairs, folder, "dpo", *settings), callbacks=[Interrupt(3)])
    train_run(config(broken, pairs, folder, "dpo", *settings), resume=True)
    left = load_file(str(tmp_path / "straight" / "model.safetensors"))
    right = load_file(str(broken / "model.safetensors"))
    assert set(left) == set(right) and all(torch.equal(left[k], right[k]) for k in left)


def test_cli_trains_and_evaluates_with_chat_metrics(folder, pairs, data, tmp_path, capsys):
    run, metrics = tmp_path / "run", tmp_path / "m.json"
    assert main(["train", "--task", "preference", "--method", "simpo", "--data", str(pairs),
                 "--model", folder, "--output", str(run), "--eval-data", str(pairs),
                 *[x for s in FAST for x in ("--set", s)]]) == 0
    assert main(["eval", str(run), "--data", str(pairs), "--chat-data", str(data),
                 "--output", str(metrics)]) == 0
    written = json.loads(metrics.read_text())
    assert written["pairs"] == 4 and written["perplexity"] > 1
    assert written["chat_data"] == str(data) and "bleu" in written
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert any("preference_accuracy" in r.get("eval", {}) for r in log)


def test_eager_attention_reads_the_same_shared_rows(folder, pairs):
    model, tokenizer, _ = load_causal_lm(folder)
    batch = batch_of(tokenizer, pairs)
    with torch.no_grad():
        sdpa = sequence_logps(model.eval(), batch).logps
        model.set_attn_implementation("eager")
        eager = sequence_logps(model, batch).logps
    assert torch.allclose(sdpa, eager, atol=1e-4)


def test_prompt_learning_trains_on_plain_rows(folder, pairs, tmp_path):
    summary = train_run(config(tmp_path / "pt", pairs, folder, "dpo",
                               "strategy.name=prompt-tuning", "strategy.num_virtual_tokens=4"))
    assert summary["tokens_computed"] == summary["tokens_fed"]  # no shared context
    assert evaluate_run(tmp_path / "pt", str(pairs))["pairs"] == 4
