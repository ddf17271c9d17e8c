"""Intent and NLU predictors on ONNX Runtime (``--backend onnx``), from an ONNX export.

The exported graph takes the place of the torch model inside the very predictors the torch
backend uses (:class:`~dialogtune.inference.intent.Predictor`,
:class:`~dialogtune.inference.nlu.NluPredictor`): :class:`OnnxGraph` is an ``nn.Module``
whose ``forward`` runs the graph, so tokenisation, length-sorted batching, the softmax,
the out-of-scope rule, BIO decoding, the CRF's Viterbi and slot offsets are the same code
for both backends, and the CLI, the server and the tests see one interface.

Where the export is found (``export_folder``): RUN may be the export folder itself (the
``--output`` of ``dialogtune export RUN --format onnx``) or a run folder holding one in
``RUN/onnx/``. The backend is never chosen silently: an int8 export gives slightly
different probabilities, and a figure must say which backend produced it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..checkpoint import file_sha256
from ..config import read_run_config
from ..data.encode.intent import LabelMap
from ..data.encode.slots import SlotLabelMap
from ..errors import DialogtuneError
from ..models.loading import load_tokenizer
from ..models.nlu import NluOutput
from ..runs.layout import EvalDir, ExportDir, RunDir

BACKENDS = ("torch", "onnx")


def check_backend(backend: str) -> str:
    """``backend`` if it is one of ``BACKENDS``, else a one-line error."""
    if backend not in BACKENDS:
        raise DialogtuneError(f"--backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    return backend


def session_options(threads: int | None):
    """ONNX Runtime options: ``threads`` intra-op threads (None: this process's usable
    cores, as torch would use), every graph optimisation, one inter-op thread."""
    import onnxruntime as ort

    from ..resources import usable_cores

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or usable_cores()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


class _Heads(nn.Module):
    """Where the predictors look for a joint model's CRF (``models.nlu.slot_crf``)."""

    def __init__(self, crf: nn.Module | None):
        super().__init__()
        self.crf = crf


class OnnxGraph(nn.Module):
    """An exported intent or NLU graph behind the torch model's ``forward``: ``logits``
    for an intent run, ``NluOutput(intent_logits, slot_logits)`` for an NLU run."""

    def __init__(self, path: Path, threads: int | None = None, crf: nn.Module | None = None):
        import onnxruntime as ort

        super().__init__()
        self.session = ort.InferenceSession(str(path), session_options(threads),
                                            providers=["CPUExecutionProvider"])
        self.outputs = [output.name for output in self.session.get_outputs()]
        self.classifier = _Heads(crf)
        self.eval()

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_ignored):
        feeds = {"input_ids": input_ids.cpu().numpy(),
                 "attention_mask": attention_mask.cpu().numpy()}
        arrays = [torch.from_numpy(a) for a in self.session.run(self.outputs, feeds)]
        return arrays[0] if len(arrays) == 1 else NluOutput(*arrays)


def export_folder(source: str | Path) -> ExportDir:
    """The ONNX export at ``source`` or in ``source/onnx``; else a one-line error. An
    export inside a run must come from the run's current weights (a run trained again
    after its export would otherwise be answered by the old model)."""
    if ExportDir(Path(source)).is_export():
        return ExportDir(Path(source))
    run = RunDir(Path(source))
    if run.onnx.is_export():
        made_from = run.read_json(run.onnx.manifest).get("run_weights_sha256")
        if run.weights.exists() and made_from != file_sha256(run.weights):
            raise DialogtuneError(f"{run.onnx.path} was exported from other weights than "
                                  f"{run.weights}; export the run again")
        return run.onnx
    raise DialogtuneError(f"{source}: no ONNX export here or in {Path(source) / 'onnx'}; "
                          "write one with 'dialogtune export RUN --format onnx --output "
                          "RUN/onnx'")


def load_crf(folder: ExportDir, slots: SlotLabelMap) -> nn.Module | None:
    """The CRF of an NLU export trained with one (its transitions), else None."""
    if not folder.crf.exists():
        return None
    from safetensors.torch import load_file

    from ..models.slot_crf import BioCrf

    crf = BioCrf(slots)
    crf.load_state_dict(load_file(str(folder.crf)))
    return crf.eval()


def load_onnx_predictor(source: str | Path, threads: int | None = None):
    """The predictor of an ONNX export (``Predictor``, or ``NluPredictor`` when the export
    has a slot head), with the run's labels, config and out-of-scope threshold."""
    from .intent import Predictor
    from .nlu import NluPredictor

    folder = export_folder(source)
    files = folder.files
    config = read_run_config(folder.path)
    labels = LabelMap.from_json(files.read_json(files.label_map))
    tokenizer = load_tokenizer(str(folder.path))  # no remote code: tokenizer files only
    summary = files.read_json(files.summary) if files.summary.exists() else {}
    threshold = summary.get("oos_threshold")
    if not files.slot_labels.exists():
        return Predictor(OnnxGraph(folder.model, threads), tokenizer, labels, config,
                         threshold)
    slots = SlotLabelMap.from_json(files.read_json(files.slot_labels))
    graph = OnnxGraph(folder.model, threads, load_crf(folder, slots))
    return NluPredictor(graph, tokenizer, labels, slots, config, threshold)


def default_eval_dir(run: str | Path, backend: str) -> EvalDir:
    """Where ``eval`` writes without ``--output``: the run's ``eval/``, or the export's
    with the onnx backend, so that neither backend's figures replace the other's."""
    if check_backend(backend) == "onnx":
        return RunDir(export_folder(run).path).eval
    return RunDir(Path(run)).eval
