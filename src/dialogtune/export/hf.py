"""Export a chat run: a merged Hugging Face folder, a peft adapter folder, or a GGUF file.

- ``merge``: base + trained weights as one plain model (LoRA/DoRA/IA3 folded in; full and
  freeze runs are plain already), saved with safetensors, the tokenizer, its chat template
  and a generation config that stops at the end-of-turn token. Loads with
  ``AutoModelForCausalLM.from_pretrained`` alone.
- adapter (no ``merge``): peft's own ``adapter_config.json`` + ``adapter_model.safetensors``
  for peft strategies, pointing at the base model folder.
- GGUF: see ``export.gguf``; written only where it can be checked to be sound.
"""

from __future__ import annotations

from pathlib import Path

from ..checkpoint import write_json_atomic
from ..data.encode.chat import end_of_turn_ids
from ..errors import DialogtuneError
from ..inference.chat_run import load_chat_run
from ..runs.layout import RunDir


def _prepare_output(output: Path) -> Path:
    output = Path(output)
    if output.exists() and any(output.iterdir()):
        raise DialogtuneError(f"{output} exists and is not empty; choose another --output")
    output.mkdir(parents=True, exist_ok=True)
    return output


def save_plain_model(model, tokenizer, output: Path) -> None:
    """A standard transformers folder (safetensors) that generates like the run."""
    from transformers import GenerationConfig

    config = model.config
    if getattr(config, "quantization_config", None) is not None:
        del config.quantization_config  # weights are plain float now (base came from GGUF)
    stops = end_of_turn_ids(tokenizer)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=stops,
        pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)


def export_run(run: str | Path, output: str | Path, merge: bool = False,
               gguf: bool = False, policy=None) -> dict:
    """Write ``output`` for a trained chat run; returns a description of what was written.

    ``policy`` (a ``models.LoadPolicy``, the command line's) may grant remote code or pickle
    weights for the base model; by default neither is allowed."""
    from ..config import read_run_config
    from ..strategies import get_strategy

    cfg_of_run = read_run_config(Path(run))
    strategy = get_strategy(cfg_of_run.strategy.name)
    if gguf:
        from .gguf import export_gguf

        return export_gguf(run, output, policy)
    if merge and strategy.prompt_learning:
        raise DialogtuneError(f"strategy '{strategy.name}' adds virtual tokens that cannot be "
                              "folded into the weights; export without --merge (adapter folder)")
    adapter = not merge and strategy.peft_adapter
    if adapter and RunDir(Path(cfg_of_run.model.name)).is_run():  # no folder is its base
        raise DialogtuneError(f"{run} started from the chat run {cfg_of_run.model.name}: its "
                              "adapter was trained on that run's merged weights, which no "
                              "model folder holds; export with --merge")
    output = _prepare_output(Path(output))
    model, tokenizer, cfg, source = load_chat_run(run, merge=not adapter, policy=policy)
    if adapter:
        model.peft_config["default"].base_model_name_or_path = source
        model.save_pretrained(output)
        tokenizer.save_pretrained(output)
        kind = "peft-adapter"
    else:
        save_plain_model(model, tokenizer, output)
        kind = "merged-model"
    info = {"kind": kind, "run": str(run), "strategy": cfg.strategy.name,
            "base_model": cfg.model.name, "base_model_source": source,
            "files": sorted(p.name for p in output.iterdir())}
    write_json_atomic(info, output / "dialogtune_export.json")
    return info
