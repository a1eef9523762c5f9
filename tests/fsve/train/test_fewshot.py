"""Few-shot adaptation: which layers train, shot sampling, AdaBN, the cache head, fine-tuning
with the validation choice, the per-seed aggregation and the CLI's files."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import Subset

import fsve.fewshot as fewshot
import fsve.fewshot.adapt as fewshot_adapt
from fsve.data.dataset import SpikeDataset
from fsve.fewshot import (
    adapt_batchnorm,
    cache_logits,
    check_target,
    freeze_all_but_last_two,
    main,
    pick_shots,
    select_cache,
    summarize,
    trainable_layers,
    tune_video_path,
    video_batchnorms,
)
from fsve.models.config import teacher_config
from fsve.models.student import build_fsve
from fsve.models.teacher import SPKLIP
from fsve.train.__main__ import main as train_main


def test_last_two_layers_of_teacher_and_fsve(micro):
    teacher = SPKLIP(teacher_config(micro))
    assert list(trainable_layers(teacher)) == [
        "backbone.pool",
        "temporal.encoder.layers[-1]",
        "temporal.encoder.norm",
    ]
    params = freeze_all_but_last_two(teacher)
    trainable = {n for n, p in teacher.named_parameters() if p.requires_grad}
    assert trainable and all(
        n.startswith(("backbone.pool.", "temporal.encoder.")) for n in trainable
    )
    assert (
        "temporal.positional_embedding" not in trainable and not teacher.logit_scale.requires_grad
    )
    assert sum(p.numel() for p in params) == sum(
        p.numel() for p in teacher.parameters() if p.requires_grad
    )
    ablation = SPKLIP(teacher_config({**micro, "components": "mtf_sa"}))
    assert list(trainable_layers(ablation)) == ["backbone.layer4[-1]", "backbone.pool"]
    fsve = build_fsve(
        {
            "height": 32,
            "width": 32,
            "stem_width": 8,
            "widths": [8, 16],
            "layers": [1, 1],
            "attn_heads": 2,
            "embed_dim": 16,
            "text": micro["text"],
        }
    )
    assert list(trainable_layers(fsve)) == ["visual.blocks[-1]", "visual.proj"]
    with pytest.raises(ValueError, match="SPKLIP and FSVE"):
        trainable_layers(torch.nn.Linear(2, 2))


def test_pick_shots_is_per_class_and_seeded():
    labels = [0, 1, 0, 1, 0, 1, 2, 2]
    picked = pick_shots(labels, 2, seed=0)
    assert sorted(labels[i] for i in picked) == [0, 0, 1, 1, 2, 2]
    assert picked == pick_shots(labels, 2, seed=0) and len(set(picked)) == 6
    with pytest.raises(ValueError, match="fewer than 3 shots"):
        pick_shots(labels, 3, seed=0)


def test_fewshot_cli_writes_csv_and_plot(tiny_data, tiny_real_data, micro_config, tmp_path):
    run = tmp_path / "teacher"
    args = ["teacher", "--data", str(tiny_data), "--config", str(micro_config), "--out", str(run)]
    assert train_main([*args, "--epochs", "1", "--batch-size", "8", "--quiet"]) == 0
    out = tmp_path / "fs"
    argv = [str(run / "best.pt"), "--shots", "1", "2", "--data", str(tiny_real_data)]
    assert main([*argv, "--epochs", "2", "--seeds", "0", "1", "--out", str(out)]) == 0
    summary = pd.read_csv(out / "fewshot.csv")
    assert summary["shots"].tolist() == [0, 1, 2] and summary["train_clips"].tolist() == [0, 12, 24]
    assert summary["seeds"].tolist() == [2, 2, 2]
    assert summary["method"].tolist() == [
        "zero-shot",
        fewshot.DEFAULT_METHOD,
        fewshot.DEFAULT_METHOD,
    ]
    assert summary["top1_mean_pct"].between(0, 100).all() and (summary["top1_std_pct"] >= 0).all()
    runs = pd.read_csv(out / "fewshot_runs.csv")
    assert runs[["seed", "shots"]].values.tolist() == [
        [0, 0],
        [0, 1],
        [0, 2],
        [1, 0],
        [1, 1],
        [1, 2],
    ]
    assert runs["epoch"].between(0, 2).all() and runs["val_top1_pct"].between(0, 100).all()
    mean = runs.groupby("shots")["top1_pct"].mean().round(2).tolist()
    assert summary["top1_mean_pct"].tolist() == mean
    assert (
        summary["top1_seed1_pct"].tolist() == runs[runs["seed"] == 1]["top1_pct"].round(2).tolist()
    )
    assert (out / "fewshot.png").stat().st_size > 0
    # the earlier method, fine-tuning the last two layers, stays available
    old = tmp_path / "old"
    argv += ["--method", "finetune", "--epochs", "1", "--seeds", "3", "--out", str(old)]
    assert main(argv) == 0
    runs = pd.read_csv(old / "fewshot_runs.csv")
    assert runs["method"].tolist() == ["zero-shot", "finetune", "finetune"]
    bad = [str(run / "best.pt"), "--data", str(tiny_real_data), "--out", str(old)]
    assert main([*bad, "--shots", "0"]) == 2 and main([*bad, "--lr", "0"]) == 2


# ---------------------------------------------------------------- cache head


def test_cache_head_votes_for_the_class_of_a_matching_shot():
    text = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    keys = torch.tensor([[0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0]])
    key_labels = torch.tensor([2, 0, 1])
    query = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.3, 0.2, 0.1, -0.4]])  # row 0 = key 0, scaled
    zero = cache_logits(query, text, keys, key_labels, 0.0, 5.0, scale=10.0)
    cos = nn.functional.normalize(query, dim=-1) @ text.T
    assert torch.equal(zero, 10.0 * cos)  # alpha = 0: exactly the zero-shot logits
    logits = cache_logits(query, text, keys, key_labels, 1.0, 5.0, scale=10.0)
    raised = logits - zero
    # the query equal to a class-2 shot: affinity exp(0) = 1 to it, less to the others
    assert raised[0, 2] == pytest.approx(1.0) and raised[0, 2] > raised[0, 0] > 0
    assert raised[0, 2] > raised[0, 1] and raised[0].argmax() == 2
    # affinity exp(-beta (1 - cos)): class 0's shot has cos 0 with query 0
    assert raised[0, 0] == pytest.approx(math.exp(-5.0))
    assert torch.allclose(cache_logits(query, text, keys, key_labels, 2.0, 5.0, 10.0),
                          zero + 2.0 * raised)  # fmt: skip
    # two shots of one class add up (the values are one-hot labels)
    doubled = cache_logits(query, text, torch.cat([keys, keys[:1]]), torch.tensor([2, 0, 1, 2]),
                           1.0, 5.0, 10.0)  # fmt: skip
    assert (doubled - zero)[0, 2] == pytest.approx(2.0)


def test_select_cache_uses_the_cache_only_when_it_helps_on_val():
    text = torch.eye(2)
    # shifted domain: each class's clips lie on the other prompt's side, next to its own shots
    keys = torch.tensor([[1.2, 1.0], [1.0, 1.2]])
    key_labels = torch.tensor([1, 0])
    val = torch.tensor([[1.19, 1.0], [1.21, 1.0], [1.0, 1.19], [1.0, 1.21]])
    labels = torch.tensor([1, 1, 0, 0])
    assert (cache_logits(val, text, keys, key_labels, 0.0, 1.0).argmax(1) != labels).all()
    alpha, _, top1 = select_cache(val, labels, text, keys, key_labels, scale=10.0)
    assert alpha > 0 and top1 == 100.0
    # clips on their own prompt's side: zero-shot is right and the cache pulls the other way;
    # small alphas keep 100% too, the validation cross-entropy then picks alpha = 0
    val = torch.tensor([[0.2, 1.0], [0.1, 1.0], [1.0, 0.2], [1.0, 0.1]])
    alpha, _, top1 = select_cache(val, labels, text, keys, key_labels, scale=10.0)
    assert alpha == 0.0 and top1 == 100.0


# ---------------------------------------------------------------- AdaBN


class _Toy(nn.Module):
    """encode_video = BatchNorm over 3 features; the text tower has a BN that must stay."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(3)
        self.text = nn.Sequential(nn.BatchNorm1d(3))

    def encode_video(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x.float())


def _clips(x: torch.Tensor) -> list[dict]:
    return [{"spikes": v, "label": 0, "caption": "", "index": i} for i, v in enumerate(x)]


@pytest.mark.parametrize("batch_size", [3, 8])
def test_adabn_takes_the_shots_statistics_and_leaves_the_model(batch_size):
    torch.manual_seed(0)
    x = torch.randn(8, 3) * torch.tensor([1.0, 2.0, 0.5]) + torch.tensor([5.0, -2.0, 10.0])
    model = _Toy().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    adapted = adapt_batchnorm(model, _clips(x), batch_size=batch_size)
    assert adapted is not model and not adapted.training and not adapted.bn.training
    # the running mean is the clips' mean (batches of 3, 3, 2 weighted by their clips)
    assert torch.allclose(adapted.bn.running_mean, x.mean(0), atol=1e-5)
    if batch_size == 8:  # one batch: the unbiased variance, as BatchNorm keeps it
        assert torch.allclose(adapted.bn.running_var, x.var(0), atol=1e-5)
    assert adapted.bn.momentum == model.bn.momentum == 0.1
    # eval outputs use the new statistics
    bn = adapted.bn
    want = (x - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    assert torch.allclose(adapted.encode_video(x), want, atol=1e-5)
    assert adapted.encode_video(x).mean(0).abs().max() < 1e-4  # centred on the shots
    # the original model is untouched, the text tower's BN too
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert not model.training and torch.equal(adapted.text[0].running_mean, torch.zeros(3))
    assert video_batchnorms(model) == [model.bn]
    with pytest.raises(ValueError, match="at least one clip"):
        adapt_batchnorm(model, [])


def test_adabn_on_teacher_and_fsve_batchnorms(micro, tiny_real_data):
    from fsve.nn.norm import TDBN1d, TDBN2d

    fsve = build_fsve(
        {"height": 32, "width": 32, "stem_width": 8, "widths": [8, 16], "layers": [1, 1],
         "attn_heads": 2, "embed_dim": 16, "text": micro["text"]}
    ).eval()  # fmt: skip
    teacher = SPKLIP(teacher_config(micro)).eval()
    for model in (teacher, fsve):
        layers = video_batchnorms(model)
        assert layers and all(m.track_running_stats for m in layers)
        assert not any(m in set(model.text.modules()) for m in layers)
        if model is fsve:
            assert any(isinstance(m, TDBN1d | TDBN2d) for m in layers)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        data = SpikeDataset(tiny_real_data, "train", window=fewshot_window(model))
        adapted = adapt_batchnorm(model, Subset(data, [0, 1, 8]), batch_size=2)
        names = {id(m): n for n, m in adapted.named_modules()}
        for m in video_batchnorms(adapted):
            orig = model.get_submodule(names[id(m)])
            assert not torch.equal(m.running_mean, orig.running_mean), names[id(m)]
        assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def fewshot_window(model):
    from fsve.eval import window_for_model

    return window_for_model(model)


# ---------------------------------------------------------------- fine-tuning


def test_tune_keeps_the_weights_best_on_val(micro, tiny_real_data, monkeypatch):
    model = SPKLIP(teacher_config(micro)).eval()
    data = SpikeDataset(tiny_real_data, "train", window=fewshot_window(model))
    shots = Subset(data, pick_shots(data.labels, 1, seed=0))
    scores, states = iter([10.0, 30.0, 20.0, 30.0]), []  # epochs 0..3; a tie keeps epoch 1

    def scripted(model, *args):
        states.append({k: v.clone() for k, v in model.state_dict().items()})
        return next(scores)

    monkeypatch.setattr(fewshot_adapt, "zero_shot_top1", scripted)  # where tune_video_path looks
    text = torch.randn(12, 16)
    frozen = {n: p.clone() for n, p in model.named_parameters() if n.startswith("text.")}
    best = tune_video_path(model, shots, shots, text, 3, 1e-2, 6, 0, torch.device("cpu"), 1)
    assert best == (1, 30.0) and len(states) == 4
    final = model.state_dict()
    assert all(torch.equal(final[k], v) for k, v in states[1].items())
    assert not all(torch.equal(final[k], v) for k, v in states[3].items())  # it did train
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)
    assert not any(p.requires_grad for p in model.parameters())


# ---------------------------------------------------------------- aggregation


def _row(seed, k, top1, val=50.0):
    return {"seed": seed, "shots": k, "train_clips": 3 * k, "method": "m" if k else "zero-shot",
            "top1_pct": top1, "top5_pct": 90.0, "val_top1_pct": val}  # fmt: skip


def test_summarize_means_and_sample_std_per_k():
    rows = [_row(s, 0, 30.0) for s in (0, 1, 2)]
    rows += [_row(0, 2, 40.0), _row(1, 2, 50.0), _row(2, 2, 60.0)]
    rows += [_row(0, 4, 55.0, 70.0), _row(1, 4, 55.0, 60.0), _row(2, 4, 58.0, 65.0)]
    summary = summarize(rows)
    assert [r["shots"] for r in summary] == [0, 2, 4]
    assert summary[0]["top1_mean_pct"] == 30.0 and summary[0]["top1_std_pct"] == 0.0
    two = summary[1]
    assert (two["top1_mean_pct"], two["top1_std_pct"], two["seeds"]) == (50.0, 10.0, 3)  # ddof 1
    assert (two["top1_seed0_pct"], two["top1_seed2_pct"], two["train_clips"]) == (40.0, 60.0, 6)
    assert summary[2]["val_top1_mean_pct"] == 65.0 and summary[2]["top1_std_pct"] == 1.73
    assert summary[2]["method"] == "m" and summary[0]["method"] == "zero-shot"
    with pytest.raises(ValueError, match="4 shots: seeds"):
        summarize(rows[:-1])
    held, text = check_target(summary)
    assert held and "+26.0 points" in text and "2->4 +6.0" in text
    # 4 shots below 2 shots by more than 2 shots' std (10): not met; the gain alone: not met
    low = [r for r in rows if r["shots"] != 4] + [_row(s, 4, 39.0) for s in (0, 1, 2)]
    held, text = check_target(summarize(low))
    assert not held and "(< -10.0)" in text and "NOT met" in text
    assert not check_target(summary, gain=30.0)[0]
