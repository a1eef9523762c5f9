"""Word-level tokenizer built from captions, and the BERT-like text encoder of Sec. 3.4.

The tokenizer lower-cases, keeps runs of ASCII letters as words (everything else separates
words), and maps words to ids; its state is a plain dict so it can live in a checkpoint loaded
with ``torch.load(weights_only=True)``. The encoder is trained from scratch (nothing is
downloaded): token embedding + learnable positional embedding + pre-norm Transformer encoder
(bidirectional, padding masked) + masked mean over the non-pad tokens + linear projection to D.

Masked mean rather than the ``<eos>`` output: captions here are short class-like phrases, a
mean gives every word a direct gradient path from the loss at initialisation, and it does not
depend on ``<eos>`` surviving truncation.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from fsve.models.config import TextConfig

__all__ = [
    "EOS",
    "EOS_ID",
    "PAD",
    "PAD_ID",
    "SOS",
    "SOS_ID",
    "SPECIALS",
    "UNK",
    "UNK_ID",
    "TextEncoder",
    "WordTokenizer",
    "words",
]

PAD, UNK, SOS, EOS = "<pad>", "<unk>", "<sos>", "<eos>"
SPECIALS = (PAD, UNK, SOS, EOS)
PAD_ID, UNK_ID, SOS_ID, EOS_ID = range(4)
TOKENIZER_FORMAT = "fsve-word-tokenizer"
TOKENIZER_VERSION = 1
TOKEN_INIT_STD = 1.0  # token embedding init (see TextEncoder.__init__)

_WORD = re.compile(r"[a-z]+")


def words(text: str) -> list[str]:
    """Lower-cased words of ``text``: maximal runs of ASCII letters; anything else separates."""
    return _WORD.findall(text.lower())


class WordTokenizer:
    """Word-level vocabulary: ids 0-3 are ``<pad> <unk> <sos> <eos>``, then words.

    Words are ordered by descending count, ties alphabetically, so the vocabulary depends only
    on the multiset of captions, not on their order.
    """

    def __init__(self, vocab: Sequence[str]) -> None:
        vocab = list(vocab)
        if tuple(vocab[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"vocabulary must start with {SPECIALS}, got {vocab[:4]}")
        for w in vocab[len(SPECIALS) :]:
            if not isinstance(w, str) or _WORD.fullmatch(w) is None:
                raise ValueError(f"vocabulary word {w!r} is not a lower-case word")
        if len(set(vocab)) != len(vocab):
            raise ValueError("vocabulary has duplicate entries")
        self.vocab: list[str] = vocab
        self.index: dict[str, int] = {w: i for i, w in enumerate(vocab)}

    @classmethod
    def from_texts(
        cls, texts: Iterable[str], min_count: int = 1, max_size: int | None = None
    ) -> WordTokenizer:
        """Build from captions; keep words seen ``min_count`` times, at most ``max_size`` ids."""
        if isinstance(texts, str):
            raise ValueError("from_texts takes a list of captions, not one string")
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        if max_size is not None and max_size < len(SPECIALS):
            raise ValueError(f"max_size must be >= {len(SPECIALS)}, got {max_size}")
        counts = Counter(w for t in texts for w in words(t))
        ranked = sorted(
            (w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w)
        )
        if max_size is not None:
            ranked = ranked[: max_size - len(SPECIALS)]
        return cls([*SPECIALS, *ranked])

    def __len__(self) -> int:
        return len(self.vocab)

    @property
    def vocab_size(self) -> int:
        """Number of ids, specials included (the text encoder's ``vocab_size``)."""
        return len(self.vocab)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WordTokenizer) and self.vocab == other.vocab

    __hash__ = None  # type: ignore[assignment]

    def ids(self, text: str) -> list[int]:
        """Word ids of one text, no specials; unknown words map to ``<unk>``."""
        return [self.index.get(w, UNK_ID) for w in words(text)]

    def encode(self, texts: str | Sequence[str], context_length: int) -> torch.Tensor:
        """Texts -> LongTensor ``[B, context_length]``: ``<sos> words <eos>``, ``<pad>`` after.

        Longer texts are truncated to ``context_length - 2`` words; ``<eos>`` is always kept.
        """
        if isinstance(texts, str):
            texts = [texts]
        if context_length < 2:
            raise ValueError(f"context_length must be >= 2, got {context_length}")
        out = torch.full((len(texts), context_length), PAD_ID, dtype=torch.long)
        for row, text in enumerate(texts):
            seq = [SOS_ID, *self.ids(text)[: context_length - 2], EOS_ID]
            out[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        return out

    def decode(self, tokens: torch.Tensor | Sequence[int]) -> str:
        """One row of ids -> the words between ``<sos>`` and ``<eos>``, space-joined."""
        ids = tokens.tolist() if isinstance(tokens, torch.Tensor) else list(tokens)
        out = []
        for i in ids:
            if i < 0 or i >= len(self.vocab):
                raise ValueError(f"token id {i} is outside the vocabulary of {len(self.vocab)}")
            if i == EOS_ID:
                break
            if i not in (PAD_ID, SOS_ID):
                out.append(self.vocab[i])
        return " ".join(out)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python state for checkpoints (``weights_only`` safe)."""
        return {"format": TOKENIZER_FORMAT, "version": TOKENIZER_VERSION, "vocab": list(self.vocab)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WordTokenizer:
        """Inverse of :meth:`to_dict`; refuses other formats and versions."""
        if not isinstance(d, Mapping):
            raise ValueError(f"tokenizer state must be a dict, got {type(d).__name__}")
        if d.get("format") != TOKENIZER_FORMAT or d.get("version") != TOKENIZER_VERSION:
            raise ValueError(
                f"unsupported tokenizer state format={d.get('format')!r}"
                f" version={d.get('version')!r}; expected {TOKENIZER_FORMAT!r} v{TOKENIZER_VERSION}"
            )
        unknown = set(d) - {"format", "version", "vocab"}
        if unknown:
            raise ValueError(f"unknown tokenizer state keys {sorted(unknown)}")
        return cls(d["vocab"])


class TextEncoder(nn.Module):
    """BERT-like text encoder (Sec. 3.4, Fig. 1c): tokens ``[B, L]`` -> embeddings ``[B, D]``.

    Steps (1)-(4) of the paper: token embedding, + learnable positional embedding, pre-norm
    Transformer encoder with ``<pad>`` masked out, then the mean over non-pad positions (incl.
    ``<sos>``/``<eos>``) after a final LayerNorm, projected by ``text_projection`` to D.
    """

    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.width)
        self.positional_embedding = nn.Parameter(torch.empty(cfg.context_length, cfg.width))
        layer = nn.TransformerEncoderLayer(
            d_model=cfg.width,
            nhead=cfg.heads,
            dim_feedforward=4 * cfg.width,
            dropout=cfg.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.transformer = nn.TransformerEncoder(
            layer, cfg.layers, norm=nn.LayerNorm(cfg.width), enable_nested_tensor=False
        )
        self.text_projection = nn.Linear(cfg.width, cfg.embed_dim, bias=False)
        # Unit-scale token embeddings (CLIP uses 0.02): with tiny ones the randomly initialised
        # blocks' outputs swamp the residual stream, every prompt embeds alike (cos ~0.76 between
        # class prompts) and zero-shot training stalls (17% vs 62% val after 8 epochs, tiny).
        nn.init.normal_(self.token_embedding.weight, std=TOKEN_INIT_STD)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection.weight, std=cfg.width**-0.5)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids ``[B, L]`` (``L <= context_length``, ``<pad>`` = 0) -> ``[B, D]``."""
        if tokens.ndim != 2 or tokens.dtype not in (torch.int64, torch.int32):
            raise ValueError(
                f"tokens must be an int tensor [B, L], got {tokens.dtype} {tokens.shape}"
            )
        length = tokens.shape[1]
        if length > self.cfg.context_length:
            raise ValueError(f"{length} tokens exceed context_length {self.cfg.context_length}")
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.cfg.vocab_size):
            raise ValueError(
                f"token ids must lie in [0, {self.cfg.vocab_size}); got"
                f" [{int(tokens.min())}, {int(tokens.max())}] (vocab_size from another tokenizer?)"
            )
        pad = tokens == PAD_ID  # [B, L], True where ignored
        if pad.all(dim=1).any():
            raise ValueError("a text row is all <pad>; encode texts with WordTokenizer.encode")
        x = self.token_embedding(tokens) + self.positional_embedding[:length]  # [B, L, width]
        x = self.transformer(x, src_key_padding_mask=pad)  # [B, L, width]
        keep = (~pad).unsqueeze(-1).to(x.dtype)  # [B, L, 1]
        pooled = (x * keep).sum(dim=1) / keep.sum(dim=1)  # [B, width]
        return self.text_projection(pooled)
