"""Offline test rig: a tiny question/SQL corpus over a two-table schema, a SQLite database for it,
and tiny causal LMs (llama, mistral, qwen2, phi) with a byte-level BPE tokenizer, built in seconds
and cached on disk, so tests exercise real transformers/peft/bitsandbytes code without the hub."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, PreTrainedTokenizerFast

    from sqlft.data.records import Example

ARCHS = ("llama", "mistral", "qwen2", "phi")
# Bump when the model recipe changes; corpus and template changes are caught by _fingerprint().
RIG_VERSION = 1
MARKER = "sqlft_tiny.json"

EOS_TOKEN = "<|im_end|>"
PAD_TOKEN = "<|pad|>"
SPECIAL_TOKENS = [PAD_TOKEN, "<|im_start|>", EOS_TOKEN, "<|endoftext|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

DB_ID = "concerts"
SCHEMA_DDL = """CREATE TABLE singer (
  singer_id INTEGER PRIMARY KEY,
  name TEXT,
  country TEXT,
  age INTEGER
);
CREATE TABLE concert (
  concert_id INTEGER PRIMARY KEY,
  concert_name TEXT,
  year INTEGER,
  singer_id INTEGER REFERENCES singer(singer_id)
);"""

_COUNTRIES = ["France", "Japan", "Brazil", "Canada", "Italy", "Kenya", "Norway", "Chile"]
_NAMES = ["Ana", "Bo", "Cyd", "Dee", "Eli", "Fay", "Gus", "Hal", "Ivy", "Jo", "Kai", "Lu"]
_CONCERTS = ["Spring Gala", "Summer Jam", "Night Live", "Rock Fest", "Jazz Week", "Folk Day"]
_YEARS = list(range(2012, 2022))
_AGES = list(range(20, 65, 5))


def _corpus() -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = [
        ("How many singers are there?", "SELECT count(*) FROM singer"),
        ("How many concerts are there?", "SELECT count(*) FROM concert"),
        ("List the names of all singers.", "SELECT name FROM singer"),
        ("What is the average age of all singers?", "SELECT avg(age) FROM singer"),
        (
            "Show each country and its number of singers.",
            "SELECT country, count(*) FROM singer GROUP BY country",
        ),
        ("List singer names by age, oldest first.", "SELECT name FROM singer ORDER BY age DESC"),
        (
            "Which year had the most concerts?",
            "SELECT year FROM concert GROUP BY year ORDER BY count(*) DESC LIMIT 1",
        ),
        (
            "Show the names of singers with at least one concert.",
            "SELECT DISTINCT T1.name FROM singer AS T1 JOIN concert AS T2 ON T1.singer_id = T2.singer_id",
        ),
    ]
    for c in _COUNTRIES:
        pairs += [
            (f"List the names of singers from {c}.", f"SELECT name FROM singer WHERE country = '{c}'"),
            (f"How many singers are from {c}?", f"SELECT count(*) FROM singer WHERE country = '{c}'"),
            (
                f"What is the average age of singers from {c}?",
                f"SELECT avg(age) FROM singer WHERE country = '{c}'",
            ),
            (
                f"Who is the oldest singer from {c}?",
                f"SELECT name FROM singer WHERE country = '{c}' ORDER BY age DESC LIMIT 1",
            ),
        ]
    for a in _AGES:
        pairs += [
            (f"What are the names of singers older than {a}?", f"SELECT name FROM singer WHERE age > {a}"),
            (f"How many singers are younger than {a}?", f"SELECT count(*) FROM singer WHERE age < {a}"),
        ]
    for y in _YEARS:
        pairs += [
            (f"List the concert names in {y}.", f"SELECT concert_name FROM concert WHERE year = {y}"),
            (f"How many concerts were held in {y}?", f"SELECT count(*) FROM concert WHERE year = {y}"),
            (f"How many concerts were held after {y}?", f"SELECT count(*) FROM concert WHERE year > {y}"),
        ]
    for n in _CONCERTS:
        pairs += [
            (
                f"Show the names of singers who performed at {n}.",
                "SELECT T1.name FROM singer AS T1 JOIN concert AS T2 ON T1.singer_id = T2.singer_id "
                f"WHERE T2.concert_name = '{n}'",
            ),
            (f"In which years was {n} held?", f"SELECT year FROM concert WHERE concert_name = '{n}'"),
        ]
    for name in _NAMES:
        pairs += [
            (f"What is the age of {name}?", f"SELECT age FROM singer WHERE name = '{name}'"),
            (f"Which country is {name} from?", f"SELECT country FROM singer WHERE name = '{name}'"),
            (
                f"How many concerts did {name} perform?",
                "SELECT count(*) FROM singer AS T1 JOIN concert AS T2 ON T1.singer_id = T2.singer_id "
                f"WHERE T1.name = '{name}'",
            ),
        ]
        pairs.append(
            (
                f"List the concerts {name} performed at.",
                "SELECT T2.concert_name FROM singer AS T1 JOIN concert AS T2 ON T1.singer_id = T2.singer_id "
                f"WHERE T1.name = '{name}'",
            )
        )
    for c, a in itertools.product(_COUNTRIES, _AGES[::2]):
        pairs.append(
            (
                f"List the names of singers from {c} older than {a}.",
                f"SELECT name FROM singer WHERE country = '{c}' AND age > {a}",
            )
        )
    for c in _COUNTRIES:
        pairs.append(
            (f"How many singers are not from {c}?", f"SELECT count(*) FROM singer WHERE country != '{c}'")
        )
    for y in _YEARS:
        join = "FROM singer AS T1 JOIN concert AS T2 ON T1.singer_id = T2.singer_id"
        pairs += [
            (f"Which singers performed in {y}?", f"SELECT T1.name {join} WHERE T2.year = {y}"),
            (
                f"What is the average age of singers who performed in {y}?",
                f"SELECT avg(T1.age) {join} WHERE T2.year = {y}",
            ),
        ]
    for k, word in enumerate(["two", "three", "four", "five"], start=2):
        pairs += [
            (f"List the {word} youngest singers.", f"SELECT name FROM singer ORDER BY age ASC LIMIT {k}"),
            (
                f"List the {word} most recent concerts.",
                f"SELECT concert_name FROM concert ORDER BY year DESC LIMIT {k}",
            ),
        ]
    for c, y in itertools.product(_COUNTRIES, _YEARS):
        pairs.append(
            (
                f"How many concerts in {y} had a singer from {c}?",
                "SELECT count(*) FROM singer AS T1 JOIN concert AS T2 ON T1.singer_id = T2.singer_id "
                f"WHERE T1.country = '{c}' AND T2.year = {y}",
            )
        )
    random.Random(0).shuffle(pairs)
    return pairs


#: (question, gold SQL) pairs over SCHEMA_DDL, deterministic order; every query runs on `make_sqlite_db`.
CORPUS: list[tuple[str, str]] = _corpus()


def corpus_examples(source: str = "tiny") -> list[Example]:
    """CORPUS as `Example` records with db_id and the DDL as inline context."""
    from sqlft.data.records import Example

    return [Example(question=q, sql=s, source=source, db_id=DB_ID, context=SCHEMA_DDL) for q, s in CORPUS]


def make_sqlite_db(path: Path) -> Path:
    """Write the corpus database (schema plus a few rows) to `path`, replacing any file there."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    con = sqlite3.connect(path)
    try:
        con.executescript(SCHEMA_DDL)
        rng = random.Random(1)
        singers = [(i + 1, n, _COUNTRIES[i % len(_COUNTRIES)], 20 + 3 * i) for i, n in enumerate(_NAMES)]
        con.executemany("INSERT INTO singer VALUES (?, ?, ?, ?)", singers)
        concerts = [
            (i + 1, _CONCERTS[i % len(_CONCERTS)], rng.choice(_YEARS), rng.randint(1, len(_NAMES)))
            for i in range(20)
        ]
        con.executemany("INSERT INTO concert VALUES (?, ?, ?, ?)", concerts)
        con.commit()
    finally:
        con.close()
    return path


def cache_dir() -> Path:
    """Where tiny models are cached: `$SQLFT_CACHE/tiny-models`, else a per-user temp folder."""
    root = os.environ.get("SQLFT_CACHE")
    base = Path(root) if root else Path(tempfile.gettempdir()) / f"sqlft-cache-{os.getuid()}"
    return base / "tiny-models"


def tiny_model_path(arch: str, *, warm_up: bool = False, seed: int = 0) -> Path:
    """The cached tiny model for `arch` (built on first use); cheap to call from every test."""
    name = f"{arch}-{'warm' if warm_up else 'cold'}-s{seed}-{_fingerprint()}"
    return build_tiny_model(arch, cache_dir() / name, warm_up=warm_up, seed=seed)


def build_tiny_model(arch: str, dest: Path, *, warm_up: bool = False, seed: int = 0) -> Path:
    """Build a tiny model + tokenizer into `dest` with `save_pretrained`; reuse it if already there.

    The build goes to a sibling temp folder and is renamed into place, so concurrent test
    processes never see a half-written model.
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown tiny arch {arch!r}; choose one of {', '.join(ARCHS)}")
    dest = Path(dest)
    wanted = {"arch": arch, "warm_up": warm_up, "seed": seed, "fingerprint": _fingerprint()}
    if _marker(dest) == wanted:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        _build(arch, tmp, warm_up=warm_up, seed=seed)
        (tmp / MARKER).write_text(json.dumps(wanted))
        if dest.exists():
            shutil.rmtree(dest, ignore_errors=True)
        try:
            os.replace(tmp, dest)
        except OSError:
            if _marker(dest) != wanted:  # lost a race to a process that built something else
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _fingerprint() -> str:
    """Changes whenever what a tiny model is built from changes, so caches never go stale."""
    blob = json.dumps([RIG_VERSION, CORPUS, CHAT_TEMPLATE, SPECIAL_TOKENS, SCHEMA_DDL])
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def _marker(path: Path) -> dict | None:
    try:
        return json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return None


def build_tokenizer(vocab_size: int = 640) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on the corpus, ChatML-like, with pad != eos and no BOS."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = [t for pair in CORPUS for t in pair] + [SCHEMA_DDL, "system\nuser\nassistant\n"]
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        unk_token=None,
        bos_token=None,
        additional_special_tokens=["<|im_start|>", "<|endoftext|>"],
        chat_template=CHAT_TEMPLATE,
        padding_side="right",
        model_max_length=512,
    )


def _config(arch: str, vocab_size: int, eos: int, pad: int):
    from transformers import LlamaConfig, MistralConfig, PhiConfig, Qwen2Config

    common = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=None,
        eos_token_id=eos,
        pad_token_id=pad,
        tie_word_embeddings=False,
    )
    cls = {"llama": LlamaConfig, "mistral": MistralConfig, "qwen2": Qwen2Config, "phi": PhiConfig}[arch]
    extra = {"sliding_window": None} if arch in ("mistral", "qwen2") else {}
    return cls(**common, **extra)


def _build(arch: str, dest: Path, *, warm_up: bool, seed: int) -> None:
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    tokenizer = build_tokenizer()
    vocab = -(-len(tokenizer) // 64) * 64  # round up: tidy shapes for quantised layers
    config = _config(arch, vocab, tokenizer.eos_token_id, tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None
    )
    if warm_up:
        warm_up_model(model, tokenizer, seed=seed)
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)


def chat_prompt(tokenizer: PreTrainedTokenizerBase, question: str) -> str:
    """The prompt the warm-up trains on: one user turn and the assistant header."""
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
    )


def warm_up_model(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    *,
    steps: int = 150,
    batch_size: int = 16,
    lr: float = 3e-3,
    seed: int = 0,
) -> float:
    """Short full-parameter training on CORPUS (loss on the SQL and final eos only) so the tiny
    model answers a chat prompt with SQL-like text; a few seconds on one CPU thread."""
    import torch

    rows = []
    for q, s in CORPUS:
        p = tokenizer(chat_prompt(tokenizer, q), add_special_tokens=False)["input_ids"]
        c = tokenizer(s + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        rows.append((p + c, [-100] * len(p) + c))
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        idx = torch.randint(len(rows), (batch_size,), generator=gen).tolist()
        width = max(len(rows[i][0]) for i in idx)
        ids = torch.full((batch_size, width), tokenizer.pad_token_id)
        labels = torch.full((batch_size, width), -100)
        mask = torch.zeros((batch_size, width), dtype=torch.long)
        for b, i in enumerate(idx):
            x, y = rows[i]
            ids[b, : len(x)] = torch.tensor(x)
            labels[b, : len(y)] = torch.tensor(y)
            mask[b, : len(x)] = 1
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    model.eval()
    return loss.item()
