"""Knowledge distillation: a fast student parser learns from the trained parser's (the teacher's) soft labels.

The student trains with the parser's own loop (:func:`stages.core.parsing.training.fit_parser`) and the parser's
hyper-parameters, with any of them overridden in ``distill.student`` (its architecture above all). Each batch's
loss is ``(1 - weight) * supervised + weight * T^2 * KL(softmax(teacher / T) || softmax(student / T))``
(Hinton et al. 2015), mean over pixels; the teacher, in eval mode and without gradients, sees the same augmented
batch. ``weight`` 0 trains the same student on the hard labels alone: the baseline that measures what
distillation gains.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from stages.core.common.params import ParamsError, ParamsSection
from stages.core.parsing.losses import split_outputs
from stages.core.parsing.training import ParserParams, ParserRun, fit_parser, parser_params


class DistillParams(ParamsSection):
    """The ``distill`` section: soft-label ``temperature`` and ``weight``, and ``student``, the keys of the
    ``parser`` section that the student changes (any of them; the rest are the parser's)."""

    SECTION = "distill"
    temperature: float = Field(2.0, gt=0)
    weight: float = Field(0.5, ge=0, le=1)
    student: dict[str, Any] = {"arch": "regseg_slim"}


# The student never resumes the teacher's interrupted run.
STUDENT_FORCED = {"resume": ""}


def student_params(parser: ParserParams | dict[str, Any], distill: DistillParams) -> ParserParams:
    """The student's ``parser`` section: the teacher's, with ``distill.student`` merged in; bad keys are named."""
    merged = {**parser_params(parser).as_dict(), **distill.student, **STUDENT_FORCED}
    unknown = sorted(set(distill.student) - set(ParserParams.model_fields))
    if unknown:
        raise ParamsError(f"params.yaml: {', '.join(f'distill.student.{k}: unknown key' for k in unknown)} "
                          f"(the student's keys are the parser section's: {', '.join(ParserParams.model_fields)})")
    return ParserParams.from_params(merged, name="distill.student (merged into parser)")


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(softmax(teacher / T) || softmax(student / T))`` summed over classes, mean over ``(B, H, W)``;
    both ``(B, C, H, W)``. The ``T^2`` keeps the gradient scale independent of ``T``."""
    log_student = F.log_softmax(student_logits / temperature, dim=1)
    log_teacher = F.log_softmax(teacher_logits / temperature, dim=1)
    kl = (log_teacher.exp() * (log_teacher - log_student)).sum(1)
    return kl.mean() * temperature ** 2


class TeacherLoss:
    """``fit_parser``'s ``extra_loss``: blends each batch's supervised loss with the teacher's soft labels."""

    def __init__(self, teacher: nn.Module, temperature: float, weight: float):
        self.teacher = teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.temperature, self.weight = float(temperature), float(weight)

    def __call__(self, images: torch.Tensor, outputs, supervised: torch.Tensor) -> torch.Tensor:
        if self.weight == 0:
            return supervised
        with torch.no_grad():
            teacher_logits = split_outputs(self.teacher.to(images.device)(images))[0]
        soft = distillation_loss(split_outputs(outputs)[0], teacher_logits, self.temperature)
        return (1 - self.weight) * supervised + self.weight * soft


def fit_student(parser: ParserParams | dict[str, Any], distill: DistillParams, loss_spec: str, cache_dir: Path,
                class_weights: torch.Tensor | None, teacher: nn.Module, live=None,
                masks_dir: Path | None = None) -> ParserRun:
    """Train the student of ``distill`` from ``teacher`` (a loaded parser) on the cache; returns its run.
    ``masks_dir``: the masks stage's output, for the ``augment.masked_photo`` the student inherits."""
    cfg = student_params(parser, distill)
    return fit_parser(cfg, loss_spec, cache_dir, class_weights, live=live, seed=cfg.seed, masks_dir=masks_dir,
                      extra_loss=TeacherLoss(teacher, distill.temperature, distill.weight))
