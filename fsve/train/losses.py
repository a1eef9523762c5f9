"""The training losses: STCL (Eq. 6), the class-prompt task loss and the distillation terms.

``logit_scale`` arguments are the logit multiplier ``1/τ`` itself (what ``SPKLIP.forward``
returns, already exponentiated and clamped), not its logarithm.

Factor: Eq. 6 sums the video->text and text->video cross-entropies; :func:`stcl_loss` returns
their MEAN, i.e. Eq. 6 / 2 (CLIP's convention), so a chance-level batch scores ``log B``.

Duplicate captions: two clips of one class in a batch often share a caption, and Eq. 6 would
push each away from the other's (identical) text. With ``labels`` given, every same-label pair is
a positive: the target row of sample i is uniform over ``{j : labels_j = labels_i}`` (soft
multi-positive cross-entropy); with all labels distinct this is exactly Eq. 6 / 2.

Two losses for :func:`fsve.train.loop.fit` build on it: :class:`StclPromptLoss` (the teacher,
and the FSVE trained alone) and :class:`DistillLoss` (the FSVE distilled from the teacher,
``L = a · L_con + b · L_kl + c · L_emb + d · L_step``, see :mod:`fsve.train.distill`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "PROMPT_TEMPLATES",
    "DistillLoss",
    "DistillWeights",
    "StclPromptLoss",
    "class_anchors",
    "distill_terms",
    "prompt_bank",
    "similarity_logits",
    "stcl_loss",
    "teacher_block_embeddings",
    "zero_shot_logits",
]


def similarity_logits(
    a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor | float
) -> torch.Tensor:
    """Scaled cosine similarities ``sim(a_i, b_j) / τ``: ``[N, D], [M, D]`` -> ``[N, M]``."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(
            f"embeddings must be [N, D] and [M, D], got {tuple(a.shape)}, {tuple(b.shape)}"
        )
    return logit_scale * F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T


def stcl_loss(
    video_emb: torch.Tensor,
    text_emb: torch.Tensor,
    logit_scale: torch.Tensor | float,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE of Eq. 6 over a batch of B matched pairs, ``[B, D], [B, D]`` -> scalar.

    Returns ``(CE(v->t) + CE(t->v)) / 2`` with cosine similarity and temperature ``1/logit_scale``.
    ``labels [B]`` (optional) makes all same-label pairs positives (see the module docstring).
    """
    if video_emb.shape != text_emb.shape or video_emb.ndim != 2:
        raise ValueError(
            f"video and text embeddings must both be [B, D], got {tuple(video_emb.shape)}"
            f" and {tuple(text_emb.shape)}"
        )
    if video_emb.shape[0] == 0:
        raise ValueError("stcl_loss needs a non-empty batch")
    logits = similarity_logits(video_emb, text_emb, logit_scale)  # [B, B], rows: videos
    b = logits.shape[0]
    if labels is None:
        target = torch.arange(b, device=logits.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    if labels.shape != (b,):
        raise ValueError(f"labels must be [B] = [{b}], got {tuple(labels.shape)}")
    same = (labels[:, None] == labels[None, :]).to(logits.dtype)  # [B, B], symmetric
    target = same / same.sum(dim=1, keepdim=True)
    v2t = -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    t2v = -(target * F.log_softmax(logits.T, dim=1)).sum(dim=1).mean()
    return 0.5 * (v2t + t2v)


def zero_shot_logits(
    video_emb: torch.Tensor, class_text_emb: torch.Tensor, logit_scale: torch.Tensor | float
) -> torch.Tensor:
    """Class logits from prompt embeddings: ``[B, D], [C, D]`` -> ``[B, C]``; argmax = class."""
    return similarity_logits(video_emb, class_text_emb, logit_scale)


# Prompt templates the text encoder sees in training; the first is the evaluation prompt
# (fsve.data.synth.DEFAULT_PROMPT_TEMPLATE), the others keep it from keying on exact wording.
PROMPT_TEMPLATES = (
    "a video of an object {}",
    "a spike camera clip of an object {}",
    "an object {}",
    "a clip of a shape {}",
)


def prompt_bank(
    tokenizer: Any, class_names: Sequence[str], templates: Sequence[str], context_length: int
) -> torch.Tensor:
    """Token ids of every template x class prompt, ``[T, C, L]``."""
    if not templates or not class_names:
        raise ValueError("prompt_bank needs at least one template and one class")
    rows = [
        tokenizer.encode([t.format(name) for name in class_names], context_length)
        for t in templates
    ]
    return torch.stack(rows)


def class_anchors(num_classes: int, dim: int, seed: int = 0) -> torch.Tensor:
    """Fixed orthonormal class directions ``[C, D]`` (QR of a seeded Gaussian), no parameters.

    A fixed classifier (Hoffer et al., ICLR 2018) gives the video encoder a direct supervised
    signal without adding weights to the model, so checkpoints keep the SPKLIP/FSVE layout and a
    resumed run sees the same anchors.
    """
    if num_classes > dim:
        raise ValueError(f"{num_classes} class anchors need embed_dim >= {num_classes}, got {dim}")
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, num_classes, generator=g, dtype=torch.float64))
    return q.T.contiguous().float()


class StclPromptLoss:
    """STCL on captions plus a class-prompt term, for the teacher and FSVE trained alone.

    ``loss = w_caption * stcl(v', t_caption, labels) + w_prompt * CE(s * cos(v', t_prompt), label)
    + w_class * CE(v @ A^T, label)``:

    - Eq. 6 (``stcl_loss``) over the batch's captions; with ``use_labels`` every same-class
      pair is a positive (two captions of one class are not pushed apart);
    - the video->text half of Eq. 6 against the C class prompts of one template (drawn per step
      from ``prompt_tokens [T, C, L]`` with the torch RNG), i.e. zero-shot classification
      through the text encoder, the task the paper evaluates (Table 1);
    - with ``w_class > 0``, cross-entropy of the video embedding against fixed orthonormal class
      anchors ``A`` (:func:`class_anchors`), a supervised signal for the video encoder alone.

    ``detach_video=True`` makes ``v' = stopgrad(v)``: the two text terms then train only the text
    encoder (and the temperature), aligning it to the video embeddings, while the video encoder
    learns from the anchor term (LiT-style, with the roles swapped). On the built-in data the
    joint objective learned motion several times slower: the text targets move every step and
    their gradients fight the video features (README, "Training").

    Captions and prompts go through one ``model(spikes, tokens)`` call (DDP-safe).
    """

    def __init__(
        self,
        tokenizer: Any,
        prompt_tokens: torch.Tensor,
        w_prompt: float = 1.0,
        use_labels: bool = True,
        w_caption: float = 1.0,
        w_class: float = 0.0,
        detach_video: bool = False,
    ) -> None:
        if prompt_tokens.ndim != 3:
            raise ValueError(f"prompt_tokens must be [T, C, L], got {tuple(prompt_tokens.shape)}")
        for name, value in (("w_prompt", w_prompt), ("w_caption", w_caption), ("w_class", w_class)):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if detach_video and w_class == 0:
            raise ValueError("detach_video needs w_class > 0, or nothing trains the video encoder")
        self.tokenizer = tokenizer
        self.prompt_tokens = prompt_tokens
        self.context_length = prompt_tokens.shape[-1]  # captions are padded to the same L
        self.w_prompt = w_prompt
        self.use_labels = use_labels
        self.w_caption = w_caption
        self.w_class = w_class
        self.detach_video = detach_video
        self._anchors: torch.Tensor | None = None

    def anchors(self, dim: int, device: torch.device) -> torch.Tensor:
        """The ``[C, D]`` class anchors (C from the prompt bank), cached."""
        if self._anchors is None or self._anchors.shape[1] != dim:
            self._anchors = class_anchors(self.prompt_tokens.shape[1], dim)
        return self._anchors.to(device)

    def __call__(self, model: nn.Module, batch: Mapping[str, Any]) -> torch.Tensor:
        spikes, labels = batch["spikes"], batch["label"]
        b = len(labels)
        tokens = self.tokenizer.encode(list(batch["caption"]), self.context_length)
        t = int(torch.randint(len(self.prompt_tokens), ())) if len(self.prompt_tokens) > 1 else 0
        tokens = torch.cat([tokens, self.prompt_tokens[t]]).to(spikes.device)
        video, text, scale = model(spikes, tokens)
        video, text = video.float(), text.float()
        v = video.detach() if self.detach_video else video
        loss = video.new_zeros(())
        if self.w_caption > 0:
            loss = loss + self.w_caption * stcl_loss(
                v, text[:b], scale, labels if self.use_labels else None
            )
        else:  # keep every parameter in the graph (DDP), at no cost to the value
            loss = loss + 0.0 * text[:b].sum()
        if self.w_prompt > 0:
            logits = zero_shot_logits(v, text[b:], scale)  # [B, C]
            loss = loss + self.w_prompt * nn.functional.cross_entropy(logits, labels)
        if self.w_class > 0:
            logits = video @ self.anchors(video.shape[1], video.device).T  # [B, C]
            loss = loss + self.w_class * nn.functional.cross_entropy(logits, labels)
        return loss


@dataclass(frozen=True)
class DistillWeights:
    """Weights ``a, b, c`` of the three terms and the KL temperature ``T``."""

    contrastive: float = 1.0  # a, L_con
    kl: float = 1.0  # b, L_kl
    embed: float = 1.0  # c, L_emb
    temperature: float = 2.0  # T of the class-prompt distributions
    steps: float = 0.0  # d, L_step: per time step against the teacher's per-block outputs

    def __post_init__(self) -> None:
        for name in ("contrastive", "kl", "embed", "steps"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"--w-{name} must be >= 0, got {getattr(self, name)!r}")
        if not self.temperature > 0:
            raise ValueError(f"--temperature must be > 0, got {self.temperature!r}")
        if self.contrastive + self.kl + self.embed + self.steps <= 0:
            raise ValueError("at least one distillation weight must be > 0")


def distill_terms(
    student_video: torch.Tensor,
    teacher_video: torch.Tensor,
    caption_text: torch.Tensor,
    prompt_text: torch.Tensor,
    student_scale: torch.Tensor | float,
    teacher_scale: torch.Tensor | float,
    labels: torch.Tensor | None,
    temperature: float,
) -> dict[str, torch.Tensor]:
    """The three loss terms (:mod:`fsve.train.distill`) as scalars: ``con``, ``kl``, ``emb``.

    ``student_video, teacher_video, caption_text [B, D]``, ``prompt_text [C, D]``.
    """
    con = stcl_loss(student_video, caption_text, student_scale, labels)
    t = temperature
    log_p_s = F.log_softmax(similarity_logits(student_video, prompt_text, student_scale) / t, 1)
    log_p_t = F.log_softmax(similarity_logits(teacher_video, prompt_text, teacher_scale) / t, 1)
    kl = F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True) * t * t
    emb = (1.0 - F.cosine_similarity(student_video, teacher_video, dim=-1)).mean()
    return {"con": con, "kl": kl, "emb": emb}


class DistillLoss:
    """``loss_fn(student, batch)`` for :func:`fsve.train.loop.fit` (:mod:`fsve.train.distill`).

    The frozen ``teacher`` gives video embeddings and its ``1/τ``; the student's forward gets
    the batch's caption tokens and the class prompts ``prompt_tokens [C, L]`` (one call: DDP).
    """

    def __init__(
        self,
        teacher: nn.Module,
        tokenizer: Any,
        prompt_tokens: torch.Tensor,
        w: DistillWeights,
        targets: torch.Tensor | None = None,
    ) -> None:
        if prompt_tokens.ndim != 2:
            raise ValueError(f"prompt_tokens must be [C, L], got {tuple(prompt_tokens.shape)}")
        if targets is not None and targets.ndim != 3:
            raise ValueError(f"targets must be [N, K, D], got {tuple(targets.shape)}")
        self.teacher, self.tokenizer, self.prompt_tokens, self.w = (
            teacher,
            tokenizer,
            prompt_tokens,
            w,
        )
        self.targets = targets  # teacher_targets(): per train clip, by dataset index

    def __call__(self, model: nn.Module, batch: Mapping[str, Any]) -> torch.Tensor:
        spikes, labels = batch["spikes"], batch["label"]
        b = len(labels)
        length = self.prompt_tokens.shape[-1]
        tokens = self.tokenizer.encode(list(batch["caption"]), length)
        tokens = torch.cat([tokens, self.prompt_tokens]).to(spikes.device)
        visual = getattr(model, "module", model).visual  # DDP wraps the FSVE
        captured: list[torch.Tensor] = []  # final-LIF spikes [T, B, N, C], for L_step only
        hook = (
            visual.final_lif.register_forward_hook(lambda m, a, out: captured.append(out))
            if self.w.steps > 0
            else None
        )
        try:
            video, text, scale = model(spikes, tokens)
        finally:
            if hook is not None:
                hook.remove()
        with torch.no_grad():
            if self.targets is not None:  # computed once per clip, on the unshifted clip
                teacher_blocks = self.targets[batch["index"].cpu()].to(spikes.device)
            else:
                teacher_blocks = teacher_block_embeddings(self.teacher, spikes).float()  # [B, K, D]
            teacher_video = teacher_blocks.mean(dim=1)  # Eq. 5: the teacher's video embedding
            teacher_scale = self.teacher.scale().float()
        terms = distill_terms(
            video.float(),
            teacher_video,
            text[:b].float(),
            text[b:].float(),
            scale.float(),
            teacher_scale,
            labels,
            self.w.temperature,
        )
        loss = (
            self.w.contrastive * terms["con"]
            + self.w.kl * terms["kl"]
            + self.w.embed * terms["emb"]
        )
        if self.w.steps > 0:
            # the student's embedding per time step: proj of that step's firing rates (the
            # video embedding is their mean, proj being affine), against the teacher's output
            # for the same sub-block after its temporal Transformer (5x denser targets)
            per_step = visual.proj(captured[-1].mean(dim=2)).float()  # [T=K, B, D]
            cos = F.cosine_similarity(per_step, teacher_blocks.transpose(0, 1), dim=-1)
            loss = loss + self.w.steps * (1.0 - cos).mean()
        return loss


def teacher_block_embeddings(teacher: nn.Module, spikes: torch.Tensor) -> torch.Tensor:
    """The teacher's per-sub-block outputs ``[B, K, D]`` whose mean is its video embedding."""
    x = teacher.forward_blocks(teacher.forward_features(spikes))
    return teacher.temporal(x) if teacher.temporal is not None else x
