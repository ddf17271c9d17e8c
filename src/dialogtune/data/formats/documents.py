"""Raw domain documents (.txt / .md files or a folder) → fixed-length token blocks.

Continued pre-training reads text the way the model was pre-trained on it: documents are
tokenized, joined with the end-of-text token between them (so the model sees where one
ends) and cut into blocks of ``max_length`` tokens; every token of a block is trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...errors import DataError
from ..encode.chat import IGNORE, EncodedDialogue
from ..files import read_text

DOCUMENT_SUFFIXES = (".txt", ".md", ".markdown")
MIN_TAIL_TOKENS = 16  # a shorter final block is mostly separator: not worth a step


@dataclass(frozen=True)
class Document:
    text: str
    source: str


def is_document_path(path: str | Path) -> bool:
    """True for a folder or a .txt/.md file: the inputs ``--task pretrain`` reads."""
    path = Path(path)
    return path.is_dir() or path.suffix.lower() in DOCUMENT_SUFFIXES


def document_files(path: str | Path) -> list[Path]:
    """The document files under ``path`` (recursively, sorted), or ``path`` itself."""
    path = Path(path)
    if not path.exists():
        raise DataError("file or folder not found", str(path))
    if path.is_dir():
        files = sorted(p for p in path.rglob("*")
                       if p.is_file() and p.suffix.lower() in DOCUMENT_SUFFIXES)
        if not files:
            raise DataError(f"no documents ({', '.join(DOCUMENT_SUFFIXES)}) in this folder",
                            str(path))
        return files
    if path.suffix.lower() not in DOCUMENT_SUFFIXES:
        raise DataError(f"expected a document file ({', '.join(DOCUMENT_SUFFIXES)}) or a "
                        "folder of them", str(path))
    return [path]


def read_documents(path: str | Path) -> list[Document]:
    """Every non-empty document; an empty file is an error naming it (likely a mistake)."""
    documents = []
    for file in document_files(path):
        text = read_text(file)  # UTF-8 errors name the line
        if not text.strip():
            raise DataError("document is empty", str(file), 1)
        documents.append(Document(text, str(file)))
    return documents


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
