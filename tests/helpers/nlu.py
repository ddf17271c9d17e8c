"""A small synthetic slot data set and a tiny BERT whose vocabulary covers it, for the
NLU task and serving tests."""

from __future__ import annotations

from pathlib import Path

from .chat import write_jsonl

AMOUNTS = ["fifty", "twenty", "hundred", "ten"]
PEOPLE = ["amir", "lena", "omar", "sara"]
ACCOUNTS = ["checking", "savings", "business", "joint"]
TEMPLATES = {
    "transfer": ["transfer {amount} dollars to {recipient}",
                 "send {amount} dollars to {recipient}",
                 "please send {recipient} {amount} dollars",
                 "i want to transfer {amount} dollars to {recipient} now"],
    "balance": ["what is the balance of my {account} account",
                "check my {account} balance",
                "how much money is in {account}",
                "show me the {account} balance please"],
}
WORDS = sorted({w for ts in TEMPLATES.values() for t in ts for w in t.split()
                if not w.startswith("{")} | set(AMOUNTS + PEOPLE + ACCOUNTS) | {"hello"})


def fill(template: str, values: dict[str, str]) -> dict:
    """The record of one template: text, and a span per placeholder (offsets into it)."""
    text, slots, rest = "", [], template
    while "{" in rest:
        before, _, after = rest.partition("{")
        name, _, rest = after.partition("}")
        text += before
        slots.append({"slot": name, "start": len(text), "end": len(text) + len(values[name]),
                      "value": values[name]})
        text += values[name]
    return {"text": text + rest, "slots": slots}


def nlu_records(templates: dict = TEMPLATES, amounts=AMOUNTS, people=PEOPLE,
                accounts=ACCOUNTS) -> list[dict]:
    """Every template filled four times (amount, recipient, account rotate)."""
    records = []
    for intent, texts in templates.items():
        for t, template in enumerate(texts):
            for i in range(4):
                values = {"amount": amounts[i], "recipient": people[(i + t) % 4],
                          "account": accounts[(i + t) % 4]}
                records.append({**fill(template, values), "intent": intent})
    return records



def tiny_nlu_bert(folder: Path, words=WORDS) -> str:
    """A 2-layer BERT (hidden 32) with a vocabulary holding ``words`` (default: every word
    of the data set)."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    # transformers 5 reads ``vocab`` (a dict or a file); ``vocab_file=`` is ignored there
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)},
                                  do_lower_case=True)
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(folder)
    return str(folder)


FAST = ["train.batch_size=8", "train.min_steps=0", "train.num_threads=1",
        "train.save_every_steps=0", "train.patience=100", "train.lr=3e-3"]
_CACHE: dict[str, Path] = {}


def tiny_nlu_run(root: Path) -> Path:
    """A full fine-tune that learns the data set (8 epochs, 32 steps; cached per session)."""
    if "run" not in _CACHE:
        from dialogtune.config import load_config
        from dialogtune.pipeline import train_run

        (root / "bert").mkdir(parents=True, exist_ok=True)
        data = write_jsonl(root / "train.jsonl", nlu_records())
        cfg = load_config(None, [*FAST, "train.epochs=8"], **{
            "task": "nlu", "data.train": str(data), "data.eval": str(data),
            "model.name": tiny_nlu_bert(root / "bert"), "output": str(root / "run")})
        train_run(cfg)
        _CACHE["run"] = root / "run"
    return _CACHE["run"]
