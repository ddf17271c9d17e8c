"""Export an intent or NLU run as ONNX for ONNX Runtime (``export RUN --format onnx``).

The folder holds ``model.onnx`` (inputs ``input_ids``, ``attention_mask``; outputs
``logits``, or ``intent_logits`` and ``slot_logits``), the tokenizer, the run's
``config.yaml``, ``label_map.json``, ``slot_labels.json`` (NLU), ``run.json`` (the
calibrated out-of-scope threshold), ``crf.safetensors`` (a CRF's transitions) and
``dialogtune_export.json`` (written last), built in a temporary sibling folder and renamed
into place, so a failed export leaves nothing behind.

Why torch.onnx and not optimum: ``optimum-onnx`` (0.1.0) requires transformers < 4.58 (this
project runs 5.x), and it exports the architectures transformers registers, not this
project's heads (mean pooling, the cosine head, the joint slot head). Why the dynamo
exporter: the TorchScript one (``dynamo=False``) traced transformers 5's attention-mask code
for the example's shape; measured on MiniLM, its logits for another batch shape were off by
up to 1.4, against 3e-6 for the dynamo export. ``--quantize int8``: ONNX Runtime's dynamic
quantization (int8 weights, activations quantized per batch at run time), which needs no
calibration data.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import warnings
from pathlib import Path

import torch
from torch import nn

from ..atomic import replace_durably, temporary_folder
from ..checkpoint import file_sha256, save_tensors, write_json_atomic
from ..config import read_run_config
from ..data.encode.batching import pad_batch
from ..data.encode.intent import encode_texts
from ..errors import DialogtuneError
from ..runs.layout import ExportDir, RunDir

QUANTIZE = ("int8",)
# The float32 graph must reproduce the run's logits this closely on the probe texts, else
# nothing is written: measured differences are ~3e-6 (MiniLM), float rounding only.
FP32_ATOL = 1e-4
PROBES = ("hello", "i lost my card yesterday and need a new one",
          "how much money is in my savings account", "send fifty dollars to amir",
          "what can you help me with")


class _Graph(nn.Module):
    """The run's model with the graph's inputs and outputs."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        return out if isinstance(out, torch.Tensor) else (out.intent_logits, out.slot_logits)


def output_names(slots: bool) -> list[str]:
    return ["intent_logits", "slot_logits"] if slots else ["logits"]


def plain_model(model: nn.Module, strategy_name: str) -> nn.Module:
    """The run's model with any adapter folded into its weights (in eval mode)."""
    from ..strategies import get_strategy

    if get_strategy(strategy_name).prompt_learning:
        raise DialogtuneError(f"strategy '{strategy_name}' adds virtual tokens that an ONNX "
                              "export does not carry; export runs of other strategies")
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    return model.eval()


def probe_batch(tokenizer, labels: list[str], max_length: int) -> dict[str, torch.Tensor]:
    """Padded texts of several lengths: fixed probes and the run's intent names as words."""
    texts = [*PROBES, *(label.replace("_", " ") for label in labels[:27])]
    return pad_batch(encode_texts(tokenizer, texts, max_length), tokenizer.pad_token_id or 0)


def write_graph(model: nn.Module, batch: dict[str, torch.Tensor], path: Path,
                slots: bool) -> None:
    """``model`` as ONNX at ``path``, batch and sequence length dynamic."""
    from torch.export import Dim

    longest = getattr(model.config, "max_position_embeddings", 512)
    dims = {0: Dim("batch"), 1: Dim("sequence", max=longest)}
    inputs = (batch["input_ids"], batch["attention_mask"])
    with quiet():
        program = torch.onnx.export(_Graph(model), inputs, dynamo=True,
                                    input_names=["input_ids", "attention_mask"],
                                    output_names=output_names(slots),
                                    dynamic_shapes={"input_ids": dims, "attention_mask": dims})
        program.save(str(path))


def quantize_int8(path: Path) -> None:
    """Replace the float32 graph at ``path`` by ONNX Runtime's dynamic int8 quantization."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = path.with_name("float32.onnx")
    path.rename(source)
    with quiet():
        quantize_dynamic(str(source), str(path), weight_type=QuantType.QInt8)
    source.unlink()


@contextlib.contextmanager
def quiet():
    """Keep the CLI's output to the export's description: the exporter prints its progress,
    warns about renamed axes and absent torchvision ops, the quantizer suggests a
    pre-processing step."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def compare_outputs(model: nn.Module, graph_path: Path, batch: dict[str, torch.Tensor],
                    slots: bool) -> dict:
    """How far the ONNX graph's outputs are from the model's on ``batch``: the largest
    absolute logit difference over the real tokens, and the share of texts whose best
    intent agrees."""
    from ..inference.onnx import OnnxGraph

    with torch.no_grad():
        expected = _Graph(model)(batch["input_ids"], batch["attention_mask"])
    found = OnnxGraph(graph_path, threads=1)(batch["input_ids"], batch["attention_mask"])
    expected = [expected] if not slots else list(expected)
    found = [found] if not slots else list(found)
    real = batch["attention_mask"].bool()
    gaps = [(e - f).abs().max().item() if e.dim() == 2 else (e - f)[real].abs().max().item()
            for e, f in zip(expected, found)]
    agree = (expected[0].argmax(-1) == found[0].argmax(-1)).float().mean().item()
    return {"max_abs_logit_difference": float(max(gaps)), "top_intent_agreement": agree,
            "probe_texts": len(real)}


def write_checked_graph(model: nn.Module, batch: dict[str, torch.Tensor], path: Path,
                        slots: bool, quantize: str | None) -> dict:
    """The graph at ``path``, its float32 logits within ``FP32_ATOL`` of the model's (else
    a one-line error), then quantized if asked; returns each precision's check."""
    write_graph(model, batch, path, slots)
    check = {"float32": compare_outputs(model, path, batch, slots)}
    gap = check["float32"]["max_abs_logit_difference"]
    if gap > FP32_ATOL:
        raise DialogtuneError(f"the ONNX graph's logits differ from the run's by {gap:.2g} "
                              f"(more than {FP32_ATOL}); nothing was written")
    if quantize:
        quantize_int8(path)
        check["int8"] = compare_outputs(model, path, batch, slots)
    return check


def write_run_files(run: RunDir, folder: ExportDir, tokenizer, crf: nn.Module | None) -> None:
    """What the predictor reads beside the graph: the tokenizer, the run's config, label
    maps and summary, and a CRF's transitions."""
    for path in (run.config, run.label_map, run.slot_labels, run.summary):
        if path.exists():
            shutil.copy2(path, folder.path / path.name)
    tokenizer.save_pretrained(folder.path)
    if crf is not None:
        save_tensors(crf.state_dict(), folder.crf)


def export_onnx(run: str | Path, output: str | Path, quantize: str | None = None,
                policy=None) -> dict:
    """Write the ONNX export of a trained intent or NLU run to ``output`` (a new or empty
    folder); returns its manifest. The float32 graph is checked against the run's logits
    (``FP32_ATOL``) before anything is written; an int8 graph's check is recorded."""
    from ..inference.intent import load_classifier
    from ..models.nlu import slot_crf

    if quantize is not None and quantize not in QUANTIZE:
        raise DialogtuneError(f"--quantize {quantize!r}: expected one of {', '.join(QUANTIZE)}")
    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise DialogtuneError(f"{output} exists and is not an empty folder; choose another "
                              "--output")
    predictor = load_classifier(run, policy)  # refuses chat runs in one line
    cfg = read_run_config(Path(run))
    model = plain_model(predictor.model, cfg.strategy.name)
    slots = hasattr(predictor, "slot_labels")
    batch = probe_batch(predictor.tokenizer, predictor.labels.labels,
                        cfg.data.max_length or 64)
    staging = ExportDir(temporary_folder(output))
    try:
        check = write_checked_graph(model, batch, staging.model, slots, quantize)
        write_run_files(RunDir(Path(run)), staging, predictor.tokenizer, slot_crf(model)
                        if slots else None)
        manifest = describe(run, cfg, quantize, slots, check, staging)
        write_json_atomic(manifest, staging.manifest)
        replace_durably(staging.path, output)
    finally:
        shutil.rmtree(staging.path, ignore_errors=True)
    return manifest


def describe(run, cfg, quantize: str | None, slots: bool, check: dict,
             folder: ExportDir) -> dict:
    """The export's manifest (``dialogtune_export.json``)."""
    import onnxruntime

    return {"kind": "onnx", "run": str(run), "task": cfg.task, "strategy": cfg.strategy.name,
            "run_weights_sha256": file_sha256(RunDir(Path(run)).weights),
            "base_model": cfg.model.name, "quantize": quantize,
            "outputs": output_names(slots), "exporter": f"torch.onnx dynamo {torch.__version__}",
            "onnxruntime": onnxruntime.__version__, "check": check,
            "files": sorted([p.name for p in folder.path.iterdir()] + [folder.manifest.name])}
