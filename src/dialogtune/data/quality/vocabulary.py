"""Text the chosen model cannot represent: characters its tokenizer maps to the unknown token.

An English WordPiece vocabulary such as all-MiniLM-L6-v2's maps most Chinese characters to
``[UNK]`` (11 of the 16 in "我的信用卡丢了怎么办，请帮我挂失"): a model trained on such
text learns from a handful of identical tokens, and nothing else says so. Byte-level BPE
vocabularies (SmolLM2, GPT-2, Qwen) have no unknown token in practice and score 0.

Measured with all-MiniLM-L6-v2 (``benchmarks/unknown_tokens.py``, results beside it):
BANKING77, SNIPS and SGD lose 0.00 % of their characters, CrossWOZ's Chinese user turns
60 % (99.98 % of turns lose some); SmolLM2 loses nothing anywhere. Hence a warning above
1 % and, for training, a refusal above 5 % unless forced: far from either side.
"""

from __future__ import annotations

import unicodedata

from ..script import UNSPACED
from .checks import tokenizable

WARN_SHARE = 0.01
REFUSE_SHARE = 0.05
SAMPLE = 5000  # texts looked at: evenly spaced, enough for a share to +-1 point
EXAMPLES = 5
ADVICE = ("choose a model whose vocabulary covers this text: --model smollm2 (byte-level, "
          "no unknown tokens) or a local multilingual model folder")


def _sample(items: list, limit: int) -> list:
    if len(items) <= limit:
        return list(items)
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def unknown_characters(tokenizer, texts: list[str]) -> list[tuple[int, int, str]] | None:
    """(characters, of which unknown, the unknown characters) per text; None when the
    tokenizer cannot say which characters a token covers (no offsets).

    Counts characters other than spaces; a text is tokenized with offsets so an unknown
    token counts the characters it covers (a WordPiece ``[UNK]`` stands for a whole word).
    """
    unk = getattr(tokenizer, "unk_token_id", None)
    if not texts:
        return []
    texts = tokenizable(texts)
    try:
        encoded = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True,
                            return_attention_mask=False, return_token_type_ids=False,
                            verbose=False)
    except NotImplementedError:  # a slow (Python) tokenizer has no offsets
        return None
    if "offset_mapping" not in encoded:
        return None
    out = []
    for text, ids, offsets in zip(texts, encoded["input_ids"], encoded["offset_mapping"]):
        lost = "".join(text[s:e] for i, (s, e) in zip(ids, offsets) if i == unk and unk is not None)
        lost = "".join(lost.split())
        out.append((len("".join(text.split())), len(lost), lost))
    return out


def unknown_token_report(tokenizer, texts: list[str], lines: list) -> dict | None:
    """The share of characters lost to the unknown token, the worst texts, and advice.

    ``share``: unknown characters over all non-space characters (a sample of ``SAMPLE``
    texts); ``texts_affected``: the share of texts losing at least one character. None
    when the tokenizer gives no character offsets.
    """
    picked = _sample(list(zip(texts, lines)), SAMPLE)
    counts = unknown_characters(tokenizer, [t for t, _ in picked])
    if counts is None:
        return None
    total = sum(c for c, _, _ in counts)
    lost = sum(u for _, u, _ in counts)
    share = lost / total if total else 0.0
    worst = sorted(((u / c, line, text, chars) for (text, line), (c, u, chars)
                    in zip(picked, counts) if u), key=lambda w: (-w[0], str(w[1])))
    return {"share": round(share, 4), "unknown_characters": lost, "characters": total,
            "texts_affected": round(sum(1 for _, u, _ in counts if u) / len(counts), 4)
            if counts else 0.0,
            "texts_looked_at": len(counts),
            "warn": share > WARN_SHARE,
            "advice": ADVICE if share > WARN_SHARE else None,
            "examples": [{"line": line, "text": text, "unknown": chars[:40],
                          "share": round(s, 3)} for s, line, text, chars in worst[:EXAMPLES]]}


def missing_characters(tokenizer, texts: list[str]) -> list[str]:
    """The Chinese / Japanese characters and punctuation marks ("，", "？") of ``texts``
    that ``tokenizer`` turns into its unknown token, in first-seen order: candidates for
    tokens of their own (each is a word by itself; other unknown text, a word with an
    emoji say, has no such natural unit)."""
    found = unknown_characters(tokenizer, texts) or []
    return list(dict.fromkeys(ch for _, _, lost in found for ch in lost
                              if UNSPACED.match(ch) or unicodedata.category(ch)[0] == "P"))


def unknown_examples(report: dict) -> list[dict]:
    """A ``data check`` report's worst texts for the model's vocabulary: the finding, shown
    only when the model loses more than a warning's share."""
    unknown = report["lengths"].get("unknown")
    return unknown["examples"] if unknown and unknown["warn"] else []


def unknown_message(report: dict, model: str) -> str:
    """One line: how much text ``model`` cannot represent, with an example and advice."""
    example = report["examples"][0]["text"] if report["examples"] else ""
    return (f"the model '{model}' cannot represent {report['share']:.0%} of the text's "
            f"characters (they become its unknown token; e.g. {example!r}): {ADVICE}")
