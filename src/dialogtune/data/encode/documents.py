"""Documents → fixed-length token blocks for continued pre-training.

Continued pre-training reads text the way the model was pre-trained on it: documents are
tokenized, joined with the end-of-text token between them (so the model sees where one
ends) and cut into blocks of ``max_length`` tokens; every token of a block is trained.
"""

from __future__ import annotations

from ...errors import DataError
from ..records import Document
from .chat import IGNORE, EncodedDialogue

MIN_TAIL_TOKENS = 16  # a shorter final block is mostly separator: not worth a step


def document_blocks(tokenizer, documents: list[Document], block_size: int
                    ) -> list[EncodedDialogue]:
    """Token blocks of ``block_size``; every token is a target except each block's first
    (nothing in the block precedes it), so ``trained`` counts real predictions."""
    if block_size < 2:
        raise DataError(f"data.max_length must be at least 2 for pretraining, got {block_size}")
    separator = tokenizer.eos_token_id
    stream: list[int] = []
    for document in documents:
        stream += tokenizer(document.text, add_special_tokens=False)["input_ids"]
        if separator is not None:
            stream.append(separator)
    blocks = []
    for start in range(0, len(stream), block_size):
        ids = stream[start:start + block_size]
        if len(ids) >= MIN_TAIL_TOKENS or not blocks:
            blocks.append(EncodedDialogue(ids, [IGNORE] + ids[1:], 1))
    return blocks
