"""Every place that feeds a model outside the training step (validation, the out-of-scope
calibration, evaluation, generation) moves its tensors to the model's device.

No GPU here: the models are moved to PyTorch's ``meta`` device instead, and a hook on the
model's forward checks that every tensor it receives is there too, then stops the pass
(meta tensors hold no values to go on with). A CPU tensor reaching it is the bug a CUDA
run would crash on: validation during GPU training once fed CPU batches to the model.
"""

from __future__ import annotations

import pytest
import torch
import torch.fx.experimental._config  # noqa: F401  (patched below)

from dialogtune.data.encode.chat import EncodedDialogue
from dialogtune.inference.chat import ChatPredictor
from dialogtune.inference.intent import Predictor, batched_features, batched_probabilities
from dialogtune.inference.nlu import NluPredictor
from dialogtune.inference.zero_shot import ZeroShotIntentPredictor
from dialogtune.models.devices import model_device, on_model_device
from dialogtune.models.lm import load_lm, mean_nll
from dialogtune.models.nlu import read_nlu
from helpers import tiny_nlu_run

pytestmark = pytest.mark.usefixtures("one_thread")


class ReachedForward(Exception):
    """The forward pass was entered with every tensor on the model's device."""


def on_meta(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` moved to the meta device, its forward guarded by the device check."""
    def check(module, args, kwargs):
        tensors = [v for v in [*args, *kwargs.values()] if torch.is_tensor(v)]
        wrong = sorted({str(t.device) for t in tensors} - {"meta"})
        assert tensors and not wrong, f"tensors on {wrong} fed to a model on meta"
        raise ReachedForward

    model.to("meta").register_forward_pre_hook(check, with_kwargs=True)
    return model


def test_inputs_follow_the_model():
    model = torch.nn.Linear(2, 2).to("meta")
    assert model_device(model).type == "meta"
    assert model_device(torch.nn.ReLU()).type == "cpu"
    moved = on_model_device({"x": torch.zeros(1, 2)}, model)
    assert moved["x"].device.type == "meta"


def test_intent_validation_and_calibration_feed_the_models_device(intent_run):
    predictor = Predictor.from_run(intent_run)
    model = on_meta(predictor.model)
    for compute in (batched_probabilities, batched_features):
        with pytest.raises(ReachedForward):
            compute(model, predictor.tokenizer, ["where is my card"], 32)


def test_nlu_validation_feeds_the_models_device(tmp_path_factory):
    predictor = NluPredictor.from_run(tiny_nlu_run(tmp_path_factory.mktemp("nlu")))
    model = on_meta(predictor.model)
    with pytest.raises(ReachedForward):
        read_nlu(model, predictor.tokenizer, ["send 5 dollars to amir"], 32)


def test_chat_validation_and_perplexity_feed_the_models_device(folder, monkeypatch):
    # choosing the trained positions indexes by a mask, which meta tensors only fake
    monkeypatch.setattr(torch.fx.experimental._config, "meta_nonzero_assume_all_nonzero", True)
    model, tokenizer, _ = load_lm(folder)
    item = EncodedDialogue(input_ids=[1, 2, 3, 4], labels=[-100, -100, 3, 4])
    with pytest.raises(ReachedForward):
        mean_nll(on_meta(model), [item], tokenizer.pad_token_id)


def test_generation_feeds_the_models_device(chat_model, monkeypatch):
    """``generate`` itself cannot run on meta (it reads token ids back): what it is handed
    is checked instead; transformers keeps the inputs' device from there on."""
    predictor = ChatPredictor.load(chat_model)
    predictor.model.to("meta")

    def generate(input_ids, attention_mask, **kwargs):
        assert input_ids.device.type == attention_mask.device.type == "meta"
        raise ReachedForward

    monkeypatch.setattr(predictor.model, "generate", generate)
    with pytest.raises(ReachedForward):
        predictor.respond([{"role": "user", "content": "hello"}], max_new_tokens=4)


def test_zero_shot_scoring_feeds_the_models_device(folder):
    model, tokenizer, _ = load_lm(folder)
    predictor = ZeroShotIntentPredictor(on_meta(model), tokenizer, ["card", "balance"])
    with pytest.raises(ReachedForward):
        predictor.probabilities(["where is my card"])


def test_preference_masks_for_eager_attention_stay_on_the_models_device():
    """Shared-context preference rows carry a 4-D mask; eager attention gets it as 0 / a
    large negative, built where the boolean mask is (it was built on the CPU)."""
    from types import SimpleNamespace

    from dialogtune.models.preference import _model_mask

    model = torch.nn.Linear(2, 2)
    model.config = SimpleNamespace(_attn_implementation="eager")
    allowed = torch.ones(1, 1, 3, 3, dtype=torch.bool, device="meta")
    additive = _model_mask(model, allowed)
    assert additive.device.type == "meta" and additive.dtype == torch.float32
    cpu = _model_mask(model, torch.tensor([[[[True, False]]]]))
    assert cpu[0, 0, 0, 0] == 0 and cpu[0, 0, 0, 1] == torch.finfo(torch.float32).min
