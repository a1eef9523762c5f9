"""Config dicts of the 32x32 micro models the tests build (a forward takes milliseconds).

Every layer type of the paper models is in them. Import them as ``from micro_configs import
...`` (``tests/`` is on ``sys.path`` through ``tests/conftest.py``); never mutate them, copy
with ``{**MICRO_FSVE, ...}`` to change a key.
"""

MICRO_TEXT = {
    "vocab_size": 64,
    "context_length": 8,
    "width": 16,
    "layers": 1,
    "heads": 2,
    "embed_dim": 16,
}

MICRO_FSVE = {
    "height": 32,
    "width": 32,
    "stem_width": 8,
    "widths": [8, 16, 16, 32],
    "layers": [1, 1, 1, 1],
    "attn_depth": 1,
    "attn_heads": 2,
    "mlp_ratio": 2,
    "embed_dim": 16,
    "text": MICRO_TEXT,
}

MICRO_TEACHER = {
    "height": 32,
    "width": 32,
    "hsfe_channels": 8,
    "sa_hidden": 4,
    "base_width": 4,
    "layers": [1, 1, 1, 1],
    "pool_heads": 4,
    "temporal_layers": 1,
    "temporal_heads": 2,
    "embed_dim": 16,
    "text": MICRO_TEXT,
}
