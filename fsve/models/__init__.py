"""Models: SPKLIP teacher (HSFE, STAR-Net), text tokenizer and encoder, configs and presets."""

from fsve.models.config import (
    TeacherConfig,
    TextConfig,
    config_from_dict,
    config_to_dict,
    teacher_config,
    with_vocab_size,
)
from fsve.models.teacher import SPKLIP, hsfe_block_features, parameter_counts
from fsve.models.text import TextEncoder, WordTokenizer

__all__ = [
    "SPKLIP",
    "TeacherConfig",
    "TextConfig",
    "TextEncoder",
    "WordTokenizer",
    "config_from_dict",
    "config_to_dict",
    "hsfe_block_features",
    "parameter_counts",
    "teacher_config",
    "with_vocab_size",
]
