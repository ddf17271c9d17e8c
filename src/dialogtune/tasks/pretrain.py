"""The pretrain task: continued pre-training of a causal LM on plain documents (text cut
into blocks of ``data.max_length`` tokens); evaluated by perplexity over document blocks."""

from __future__ import annotations

from pathlib import Path

from ..config import RunConfig
from ..data.encode.chat import EncodedDialogue
from ..data.encode.documents import document_blocks
from ..data.formats import read_documents
from ..errors import DialogtuneError
from ..inference.chat import ChatPredictor
from ..strategies import CAUSAL_LM
from .base import Task
from .causal_lm import LM_OBJECTIVE, evaluate_lm, lm_defaults, train_lm

BLOCK_TOKENS = 256  # the default data.max_length: short blocks, many steps on little text


def read_document_records(cfg: RunConfig, path: str) -> list:
    """The documents of one file or folder (``.txt`` / ``.md``)."""
    return read_documents(path)


def encode_document_file(cfg: RunConfig, tokenizer, path: str
                         ) -> tuple[list[EncodedDialogue], dict]:
    """The documents cut into blocks, every token trained (train and eval alike)."""
    blocks = document_blocks(tokenizer, read_document_records(cfg, path),
                             cfg.data.max_length or BLOCK_TOKENS)
    return blocks, {"blocks": len(blocks), "tokens": sum(len(b.input_ids) for b in blocks)}


def train_pretrain(cfg: RunConfig, resume: bool = False, callbacks=()) -> dict:
    """Continue pre-training a causal LM on documents; writes the run directory."""
    return train_lm(TASK, encode_document_file, cfg, resume, callbacks)


def evaluate_pretrain(run: str | Path, data: str, output: Path | None = None,
                      base: bool = False, policy=None,
                      oos_threshold: float | None = None, tools: str | None = None,
                      backend: str = "torch") -> dict:
    """Perplexity of a pretrain run (or, with ``base``, its base model) over documents."""
    if tools:
        raise DialogtuneError("--tools applies to chat runs")
    return evaluate_lm(Path(run), data, output, base, policy=policy,
                       oos_threshold=oos_threshold, documents=True, backend=backend)


TASK = Task("pretrain", CAUSAL_LM, defaults=lm_defaults(max_length=BLOCK_TOKENS),
            train=train_pretrain, evaluate=evaluate_pretrain,
            load_predictor=ChatPredictor.from_run, read_data=read_document_records,
            objective=LM_OBJECTIVE)
