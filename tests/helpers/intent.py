"""Intent test material: the tiny BERT (a local Hugging Face folder), intent examples,
the thread fixture and the simulated-crash callback."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

WORDS = ("card arrived lost stolen balance check my account how much money do i have where is "
         "the new please block it was transfer send to friend pay bill invoice cancel plan "
         "change upgrade phone internet slow down outage reset router hello hi thanks bye what "
         "can you help me with order status refund return late delivery password login").split()

INTENT_EXAMPLES = {
    "card_lost": ["my card was lost", "i lost my card", "card stolen please block it",
                  "block my stolen card", "lost card help", "my card is stolen",
                  "please block the card", "where is my lost card"],
    "balance": ["check my balance", "how much money do i have", "what is my balance",
                "balance please", "check account balance", "how much is in my account",
                "my account balance", "show balance"],
    "transfer": ["transfer money to friend", "send money", "send to my friend",
                 "transfer to account", "please transfer money", "send money to friend",
                 "transfer please", "i want to send money"],
}


def _tiny_tokenizer(folder: Path):
    from transformers import BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *dict.fromkeys(WORDS)]
    # transformers 5 ignores ``vocab_file`` here (every token became [UNK]): pass the map
    tokenizer = BertTokenizerFast(vocab={word: i for i, word in enumerate(vocab)},
                                  do_lower_case=True)
    tokenizer.save_pretrained(folder)
    return tokenizer


@pytest.fixture
def one_thread():
    """One intra-op thread: the machine is shared (two contending threads are slower than
    one), and equal thread counts keep float sums in the same order across runs."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> str:
    """A 2-layer BERT with a 60-word vocabulary, saved as a local Hugging Face folder."""
    import torch
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny_bert")
    tokenizer = _tiny_tokenizer(folder)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(folder)
    return str(folder)


class Interrupt:
    """A training callback that simulates a crash (Ctrl-C) after step ``step``."""

    def __init__(self, step: int):
        self.step = step

    def __call__(self, step: int) -> None:
        if step == self.step:
            raise KeyboardInterrupt


def write_intent_csv(path: Path, examples: dict[str, list[str]] = INTENT_EXAMPLES,
                     header=("text", "label")) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for label, texts in examples.items():
            for text in texts:
                writer.writerow([text, label])
    return path


@pytest.fixture
def intent_csv(tmp_path) -> Path:
    return write_intent_csv(tmp_path / "train.csv")
