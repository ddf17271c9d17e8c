"""Slot spans ↔ subword BIO labels: through the offsets of a WordPiece (tiny_bert) and a
byte-level BPE tokenizer, spans come back as the same characters of the original text,
also with accents, emoji and runs of spaces."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialogtune.data.encode.slots import (IGNORE, SlotLabelMap, constrained_bio_path,
                                          decode_spans, encode_texts, spans_to_labels)
from dialogtune.data.records import NluExample, Span

SENTENCES = ["fly to new york on monday", "send $1,630 to josé", "play jazz 🎷 now please",
             "book a table for two in paris", "what is the weather in são paulo"]


@pytest.fixture(scope="module")
def bert_tokenizer(tiny_bert):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_bert)


@pytest.fixture(scope="module")
def bpe_tokenizer():
    """A byte-level BPE (GPT-2 style, offsets not trimmed) trained on a few sentences."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    raw = ByteLevelBPETokenizer()
    raw.train_from_iterator(SENTENCES * 3, vocab_size=300, min_frequency=1, show_progress=False)
    return PreTrainedTokenizerFast(tokenizer_object=raw._tokenizer, pad_token="<pad>")


TOKENIZERS = ["bert_tokenizer", "bpe_tokenizer"]
LABELS = SlotLabelMap(["city", "day", "amount", "name", "genre"])


def one_hot(label_ids: list[int], size: int) -> np.ndarray:
    """Probabilities that put 0.9 on each given label (unlabelled tokens: O)."""
    probs = np.full((len(label_ids), size), 0.1 / (size - 1))
    for i, label in enumerate(label_ids):
        probs[i, label if label != IGNORE else 0] = 0.9
    return probs


def round_trip(tokenizer, text: str, spans: tuple[Span, ...], all_subwords=False):
    # 512: no truncation (8 emoji words can exceed 64 byte-level tokens): the property
    # checked is the round trip itself.
    (ids,), (alignment,) = encode_texts(tokenizer, [text], 512)
    labels = spans_to_labels(spans, alignment, LABELS, all_subwords)
    assert len(labels) == len(ids)
    return decode_spans(text, one_hot(labels, len(LABELS)), alignment, LABELS), labels


@pytest.mark.parametrize("fixture", TOKENIZERS)
@pytest.mark.parametrize("text, spans", [
    ("fly to new york on monday", (Span("city", 7, 15), Span("day", 19, 25))),
    ("send $1,630.  to   josé 😀!", (Span("amount", 5, 11), Span("name", 19, 23))),
    ("play jazz 🎷 now", (Span("genre", 5, 9),)),
    ("  Wetter in São   Paulo  ", (Span("city", 12, 23),)),
])
def test_spans_round_trip_to_original_characters(request, fixture, text, spans):
    tokenizer = request.getfixturevalue(fixture)
    for all_subwords in (False, True):
        decoded, _ = round_trip(tokenizer, text, spans, all_subwords)
        assert [(d.slot, d.start, d.end) for d in decoded] == [
            (s.slot, s.start, s.end) for s in spans]
        assert [d.value for d in decoded] == [text[s.start:s.end] for s in spans]
        assert all(d.confidence == pytest.approx(0.9) for d in decoded)


def test_a_token_wider_than_its_span_labels_the_whole_token(bert_tokenizer, bpe_tokenizer):
    """WordPiece reads "josé😀" as one [UNK]: the span grows to it; byte BPE keeps it."""
    text, spans = "to josé😀", (Span("name", 3, 7),)
    assert [(d.start, d.end) for d in round_trip(bert_tokenizer, text, spans)[0]] == [(3, 8)]
    assert [(d.start, d.end) for d in round_trip(bpe_tokenizer, text, spans)[0]] == [(3, 7)]


def test_first_subword_labels_ignore_the_other_pieces(bpe_tokenizer):
    text = "fly to paulo"  # "paulo" is rare in the BPE's training text: several pieces
    (_,), (alignment,) = encode_texts(bpe_tokenizer, [text], 64)
    first = spans_to_labels((Span("city", 7, 12),), alignment, LABELS)
    every = spans_to_labels((Span("city", 7, 12),), alignment, LABELS, all_subwords=True)
    pieces = [i for i, o in enumerate(alignment.offsets) if o and o[0] >= 7]
    assert len(pieces) > 1
    assert [first[i] for i in pieces] == [LABELS.index["B-city"]] + [IGNORE] * (len(pieces) - 1)
    assert [every[i] for i in pieces] == [LABELS.index["B-city"]] + \
        [LABELS.index["I-city"]] * (len(pieces) - 1)


def test_context_tokens_are_not_labelled(bert_tokenizer):
    (ids,), (alignment,) = encode_texts(bert_tokenizer, ["in checking"], 64,
                                        ["checking or savings ?"])
    labels = spans_to_labels((Span("city", 3, 11),), alignment, LABELS)
    assert sum(label != IGNORE for label in labels) == 2  # "in", "checking" only
    assert len(ids) > 6


def test_label_map_saves_and_loads(tmp_path):
    labels = SlotLabelMap.from_examples([NluExample("a b", "x", (Span("b", 2, 3),
                                                                 Span("a", 0, 1)))])
    assert labels.labels == ["O", "B-a", "I-a", "B-b", "I-b"]
    labels.save(tmp_path / "slots.json")
    assert SlotLabelMap.load(tmp_path / "slots.json").labels == labels.labels


def test_constrained_decoding_forbids_o_then_i_and_b_x_then_i_y():
    labels = SlotLabelMap(["x", "y"])  # O, B-x, I-x, B-y, I-y
    probs = np.array([[0.6, 0.1, 0.1, 0.1, 0.1],   # O
                      [0.1, 0.1, 0.5, 0.2, 0.1],   # I-x after O: invalid
                      [0.1, 0.5, 0.1, 0.1, 0.2],   # B-x
                      [0.1, 0.1, 0.1, 0.1, 0.6]])  # I-y after B-x: invalid
    path = constrained_bio_path(np.log(probs), labels)
    assert all(not (labels.labels[b].startswith("I-") and
                    labels.labels[a] not in ("B-" + labels.labels[b][2:], labels.labels[b]))
               for a, b in zip(path, path[1:]))
    assert not labels.labels[path[0]].startswith("I-")
    assert path != [int(i) for i in probs.argmax(-1)]
    # a valid greedy path is left alone
    valid = np.log(np.array([[0.1, 0.7, 0.1, 0.05, 0.05], [0.1, 0.1, 0.7, 0.05, 0.05]]))
    assert constrained_bio_path(valid, labels) == [1, 2]


WORD = st.text(alphabet="abcdeéü😀$1,", min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(words=st.lists(st.tuples(WORD, st.sampled_from(["", "city", "day"])), min_size=1,
                      max_size=8),
       gaps=st.lists(st.sampled_from([" ", "  ", "\t "]), min_size=8, max_size=8))
def test_word_aligned_spans_round_trip(bert_tokenizer, bpe_tokenizer, words, gaps):
    """Random whitespace words, some labelled: encode → labels → decode is the identity."""
    text, spans = "", []
    for (word, slot), gap in zip(words, gaps):
        text += gap if text else ""
        if slot:
            spans.append(Span(slot, len(text), len(text) + len(word)))
        text += word
    for tokenizer in (bert_tokenizer, bpe_tokenizer):
        decoded, _ = round_trip(tokenizer, text, tuple(spans))
        assert [(d.slot, d.start, d.end) for d in decoded] == [
            (s.slot, s.start, s.end) for s in spans]
