"""GGUF export of a merged chat run, written only where it can be checked to be sound.

The ``gguf`` package on PyPI writes the file format, but converting an arbitrary
transformers model needs llama.cpp's ``convert_hf_to_gguf.py`` (not on PyPI): it identifies
the tokenizer's pre-tokenizer, writes the vocabulary metadata and fixes tensor layouts per
architecture. What we can do soundly without it: a Llama-architecture run whose base model
is an embedded GGUF (``smollm2``). The original file supplies every metadata key (tokenizer,
hyper-parameters, chat template); only the tensors are replaced by the merged fine-tuned
weights (F16 matrices, F32 norms, Q/K rows re-permuted to llama.cpp's rotary layout, as the
converter does). The result is read back with transformers' GGUF loader and must give the
same tokens and next-token predictions as the run, or the file is deleted and an error
explains why. Other models get a clear error naming the converter to use on ``--merge``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import DialogtuneError

SKIPPED_KEYS = ("general.architecture", "general.file_type", "general.quantization_version")
PROBE = [{"role": "user", "content": "Hi, I need to move 40 dollars to my savings account."}]


def source_gguf(model_name: str) -> Path | None:
    """The GGUF an embedded alias was dequantized from, if any."""
    from ..models.loading import CHAT_ALIASES, _package_file

    return _package_file(*CHAT_ALIASES[model_name]) if model_name in CHAT_ALIASES else None


def permute_rotary(weights: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's rotary layout for q/k rows (the converter's ``LlamaModel.permute``)."""
    return (weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def _copy_metadata(reader, writer) -> None:
    import gguf

    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name in SKIPPED_KEYS:
            continue
        value_type = field.types[0]
        sub_type = field.types[-1] if value_type == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), value_type, sub_type=sub_type)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)


def write_gguf(source: Path, model, path: Path) -> None:
    """``source``'s metadata and tensor list, filled with ``model``'s (merged) weights."""
    import gguf

    reader = gguf.GGUFReader(str(source))
    config = model.config
    names = gguf.TensorNameMap(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    state = model.state_dict()
    hf_name = {names.get_name(k, try_suffixes=(".weight", ".bias")): k for k in state}
    writer = gguf.GGUFWriter(str(path), reader.fields["general.architecture"].contents())
    _copy_metadata(reader, writer)
    for tensor in reader.tensors:
        if tensor.name not in hf_name:
            raise DialogtuneError(f"GGUF export: no model weight for tensor '{tensor.name}'")
        data = state[hf_name[tensor.name]].detach().float().cpu().numpy()
        if tensor.name.endswith("attn_q.weight"):
            data = permute_rotary(data, config.num_attention_heads)
        elif tensor.name.endswith("attn_k.weight"):
            data = permute_rotary(data, config.num_key_value_heads)
        writer.add_tensor(tensor.name, data.astype(np.float16 if data.ndim == 2 else np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@torch.no_grad()
def check_gguf(path: Path, model, tokenizer) -> dict:
    """Read the file back with transformers and compare tokens and predictions to ``model``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..data.encode.chat import render_prompt_ids

    ids = render_prompt_ids(tokenizer, PROBE)
    loaded_tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    same_tokens = render_prompt_ids(loaded_tokenizer, PROBE) == ids
    loaded = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                  dtype=torch.float32)
    batch = torch.tensor([ids])
    expected, got = model(input_ids=batch).logits[0], loaded(input_ids=batch).logits[0]
    agreement = float((expected.argmax(-1) == got.argmax(-1)).float().mean())
    return {"same_tokens": same_tokens, "next_token_agreement": agreement,
            "max_logit_difference": float((expected - got).abs().max())}


def export_gguf(run: str | Path, output: str | Path, policy=None) -> dict:
    """Write ``output`` (a .gguf file, or a folder that gets ``model.gguf``) and check it."""
    from ..inference.chat_run import load_chat_run
    from ..config import read_run_config
    from ..strategies import get_strategy

    cfg = read_run_config(Path(run))
    source = source_gguf(cfg.model.name)
    if source is None:
        raise DialogtuneError(
            f"GGUF export works for runs on the embedded GGUF model (smollm2), not "
            f"'{cfg.model.name}': the gguf package writes the format but cannot convert a "
            "transformers tokenizer and layout soundly; export with --merge and run llama.cpp's "
            "convert_hf_to_gguf.py on that folder")
    if get_strategy(cfg.strategy.name).prompt_learning:
        raise DialogtuneError(f"strategy '{cfg.strategy.name}' cannot be merged into weights, "
                              "so it has no GGUF form")
    model, tokenizer, _, _ = load_chat_run(run, merge=True, policy=policy)
    path = Path(output)
    if path.suffix.lower() != ".gguf":
        path = path / "model.gguf"
    if path.exists():
        raise DialogtuneError(f"{path} exists; choose another --output")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_gguf(source, model, path)
    check = check_gguf(path, model, tokenizer)
    if not check["same_tokens"] or check["next_token_agreement"] < 0.95:
        path.unlink()
        raise DialogtuneError(f"GGUF export failed its read-back check {check}; file removed")
    return {"kind": "gguf", "path": str(path), "run": str(run), "check": check}
