"""Zero-shot Top-k and text-to-video Recall@k on hand-made scores, checked exactly."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from fsve.eval.metrics import (
    encode_texts,
    encode_videos,
    evaluate_model,
    recall_at_k,
    target_ranks,
    topk_accuracy,
)
from fsve.models.text import WordTokenizer

# 4 samples x 3 classes; ranks are pessimistic (ties count against the label)
LOGITS = torch.tensor(
    [
        [0.9, 0.1, 0.5],  # label 0: nothing above -> rank 0
        [0.2, 0.7, 0.7],  # label 2: ties with class 1 -> rank 1
        [0.3, 0.2, 0.1],  # label 2: both others above -> rank 2
        [0.5, 0.5, 0.5],  # label 1: all tied -> rank 2
    ]
)
LABELS = torch.tensor([0, 2, 2, 1])


def test_target_ranks_count_ties_against():
    assert target_ranks(LOGITS, LABELS).tolist() == [0, 1, 2, 2]


def test_topk_accuracy_hand_computed():
    # ranks [0, 1, 2, 2]: top1 1/4, top2 2/4, top3 4/4
    assert topk_accuracy(LOGITS, LABELS, (1, 2, 3)) == {1: 0.25, 2: 0.5, 3: 1.0}
    # k beyond the number of classes counts every sample
    assert topk_accuracy(LOGITS, LABELS, (5,)) == {5: 1.0}
    # constant scores are never a Top-1 hit
    assert topk_accuracy(torch.zeros(3, 4), torch.tensor([0, 1, 3]), (1,)) == {1: 0.0}


def test_topk_accuracy_rejects_bad_input():
    with pytest.raises(ValueError, match="targets must lie"):
        topk_accuracy(LOGITS, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="ks must be"):
        topk_accuracy(LOGITS, LABELS, (0,))
    with pytest.raises(ValueError, match="NaN"):
        topk_accuracy(torch.full((1, 2), math.nan), torch.tensor([0]))


# videos and captions in 2-D; caption i describes video i
VIDEOS = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
TEXTS = torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.0, 3.0], [0.0, -1.0]])


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(a, dim=-1) @ torch.nn.functional.normalize(b, dim=-1).T


def test_recall_at_k_hand_computed():
    sim = cosine(TEXTS, VIDEOS)
    # caption 0 -> cos (1, 0, .71, -1): video 0 first, rank 0
    # caption 1 -> cos (1, 0, .71, -1): video 1 (0) is below videos 0 and 2, rank 2
    # caption 2 -> cos (0, 1, .71, 0): video 2 below video 1, rank 1
    # caption 3 -> cos (0, -1, -.71, 0): video 3 ties with video 0, rank 1
    assert target_ranks(sim, torch.arange(4)).tolist() == [0, 2, 1, 1]
    assert recall_at_k(sim, (1, 2, 3, 10)) == {1: 0.25, 2: 0.75, 3: 1.0, 10: 1.0}


def test_recall_at_k_needs_a_query_per_video_at_most():
    with pytest.raises(ValueError, match="N_text <= N_video"):
        recall_at_k(torch.zeros(3, 2))


class FakeClips(torch.utils.data.Dataset):
    """Items whose 'spikes' are the video embeddings themselves."""

    def __init__(self, videos: torch.Tensor, labels: list[int], captions: list[str]) -> None:
        self.videos, self.labels, self.captions = videos, labels, captions

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, i: int) -> dict[str, object]:
        v, c, y = self.videos[i], self.captions[i], self.labels[i]
        return {"spikes": v, "caption": c, "label": y, "index": i}


class FakeModel(torch.nn.Module):
    """encode_video: identity; encode_text: a fixed 2-D vector per first word."""

    def __init__(self, tokenizer: WordTokenizer, table: dict[str, list[float]]) -> None:
        super().__init__()
        self.text = SimpleNamespace(cfg=SimpleNamespace(context_length=4))
        self.table = torch.zeros(len(tokenizer), 2)
        for word, vec in table.items():
            self.table[tokenizer.index[word]] = torch.tensor(vec)

    def encode_video(self, spikes: torch.Tensor) -> torch.Tensor:
        return spikes.float()

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.table[tokens[:, 1]]  # the word after <sos>


def test_evaluate_model_glue_matches_hand_computed_metrics():
    words = {"right": [1.0, 0.0], "up": [0.0, 1.0], "left": [-1.0, 0.0], "diag": [1.0, 1.0]}
    tok = WordTokenizer(["<pad>", "<unk>", "<sos>", "<eos>", *words])
    model = FakeModel(tok, words)
    # captions 0-3 embed as TEXTS up to scale; class prompts "right", "up", "left"
    data = FakeClips(VIDEOS, [0, 1, 0, 2], ["right a", "right b", "up c", "diag x"])
    prompts = ["right", "up", "left"]
    emb, labels = encode_videos(model, data, batch_size=3)
    assert torch.equal(emb, VIDEOS) and labels.tolist() == [0, 1, 0, 2]
    assert torch.equal(encode_texts(model, tok, prompts), VIDEOS[[0, 1, 3]])
    metrics = evaluate_model(model, tok, data, prompts, batch_size=3)
    # zero-shot cos to (right, up, left): v0 (1, 0, -1) label 0 rank 0; v1 (0, 1, 0) label 1
    # rank 0; v2 (.71, .71, -.71) label 0 ties "up" -> rank 1; v3 (-1, 0, 1) label 2 rank 0
    assert metrics["top1_pct"] == 75.0 and metrics["top5_pct"] == 100.0
    # retrieval: caption 3 "diag" -> cos (.71, .71, 1, -.71): video 3 last, rank 3; the
    # others as in test_recall_at_k_hand_computed: ranks [0, 2, 1, 3]
    assert metrics["r1_pct"] == 25.0 and metrics["r5_pct"] == 100.0
    assert metrics["r10_pct"] == 100.0
    assert evaluate_model(model, tok, data, prompts, retrieval=False).keys() == {
        "top1_pct",
        "top5_pct",
    }
