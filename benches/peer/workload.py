"""The encoder workload shared by the peers and the comparison with `stance bench`.

Workload: the first N sentences of a CoNLL file (one token per line, first column the word;
`-DOCSTART-` lines and blank lines separate), each sentence's words joined by single spaces,
tokenized with the all-MiniLM-L6-v2 tokenizer (models/base/tokenizer.json) with padding and
truncation off. Each sentence is one input; inputs are length-sorted into batches and padded to
the longest input of their batch.

Token counts: `tokens` INCLUDES [CLS] and [SEP] (two per sentence); `tokens_excl_specials`
excludes them, which is what `stance bench` (as of this writing) reports as `wordpieces`.
Padding is never counted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_MODEL = REPO / "models" / "base"
DEFAULT_SHARED = Path(os.environ.get("STANCE_SHARED", REPO.parent / "shared"))
DEFAULT_CONLL = DEFAULT_SHARED / "data" / "conll2003" / "train.txt"
CACHE = HERE / ".cache"


def read_conll_sentences(path: Path, limit: int) -> list[str]:
    """The first `limit` sentences of a CoNLL file, words joined by spaces (as `stance bench`)."""
    sentences: list[str] = []
    words: list[str] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("-DOCSTART-") or not line.strip():
                if words:
                    sentences.append(" ".join(words))
                    words = []
                    if len(sentences) >= limit:
                        return sentences
                continue
            words.append(line.split()[0])
    if words and len(sentences) < limit:
        sentences.append(" ".join(words))
    return sentences


def load_tokenizer(model_dir: Path):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    return tok


@dataclass
class Workload:
    sentences: list[str]
    lengths: list[int]  # tokens per sentence, [CLS]/[SEP] included

    @property
    def tokens(self) -> int:
        return sum(self.lengths)

    @property
    def tokens_excl_specials(self) -> int:
        return self.tokens - 2 * len(self.sentences)

    @property
    def words(self) -> int:
        return sum(len(s.split()) for s in self.sentences)

    def batches(self, batch_size: int) -> list[list[int]]:
        """Sentence indices, length-sorted (stable), in batches of `batch_size`."""
        order = sorted(range(len(self.sentences)), key=lambda i: self.lengths[i])
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]

    def summary(self) -> dict:
        return {
            "sentences": len(self.sentences),
            "words": self.words,
            "tokens": self.tokens,
            "tokens_excl_specials": self.tokens_excl_specials,
        }


def load_workload(conll: Path, n: int, model_dir: Path = DEFAULT_MODEL) -> Workload:
    sentences = read_conll_sentences(conll, n)
    tok = load_tokenizer(model_dir)
    lengths = [len(e.ids) for e in tok.encode_batch(sentences, add_special_tokens=True)]
    return Workload(sentences, lengths)


if __name__ == "__main__":
    import argparse
    import json

    p = argparse.ArgumentParser(description="Print the encoder workload's counts as JSON.")
    p.add_argument("--data", type=Path, default=DEFAULT_CONLL, help="CoNLL file (default: %(default)s)")
    p.add_argument("--sentences", type=int, default=2000, help="first N sentences (default: %(default)s)")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="dir with tokenizer.json (default: %(default)s)")
    a = p.parse_args()
    print(json.dumps(load_workload(a.data, a.sentences, a.model).summary()))
