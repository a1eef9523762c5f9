"""Fuzzing the checkpoint reader (``fsve.checkpoint.load_checkpoint`` and ``load_model``).

Errors: ``fsve.checkpoint.CheckpointError`` (a ``ValueError``: not an fsve checkpoint, damaged,
refused pickled objects, another format, version or kind, missing keys, tensors that are not
real and finite, a config that is out of bounds, cannot be built or does not fit the stored
weights) and ``FileNotFoundError``, one line naming the file. A model it returns is in eval mode
and holds exactly the checkpoint's tensors; an unmutated file gives back the saved weights.
"""

from __future__ import annotations

import copy
import io
import tempfile
from pathlib import Path

import micro_configs
import pytest
import torch
from fuzzing import expect, fuzz, json_values, mutated
from hypothesis import strategies as st

from fsve.checkpoint import CheckpointError, load_model, save_checkpoint
from fsve.models.student import FSVE, fsve_config

ERRORS = (CheckpointError, FileNotFoundError)
CONFIG = micro_configs.MICRO_FSVE


def valid_checkpoint() -> dict:
    torch.manual_seed(0)
    model = FSVE(fsve_config(CONFIG))
    with tempfile.TemporaryDirectory() as tmp:
        path = save_checkpoint(Path(tmp) / "c.pt", "fsve", CONFIG, model.state_dict())
        return torch.load(path, weights_only=True)


CKPT = valid_checkpoint()


def to_bytes(ckpt) -> bytes:
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    return buf.getvalue()


VALID = to_bytes(CKPT)


def check(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.pt"
        path.write_bytes(data)
        got = expect(lambda: load_model(path), ERRORS, path)
    if got is None:
        return
    model, ckpt = got
    assert not model.training
    state = model.state_dict()
    assert state.keys() == ckpt["state_dict"].keys()
    for name, tensor in state.items():
        assert torch.equal(tensor, ckpt["state_dict"][name].to(tensor.dtype)), name
        assert not tensor.is_floating_point() or bool(torch.isfinite(tensor).all()), name


TENSORS = list(CKPT["state_dict"])
ints = st.sampled_from([0, -1, 1, 3, 7, 2**31, 10**6, 5000])
odd_tensors = st.sampled_from(
    [
        torch.zeros(0),
        torch.zeros(3),
        torch.full((2, 2), float("nan")),
        torch.ones(2, dtype=torch.complex64),
        torch.ones(2, dtype=torch.int64),
        torch.tensor(float("inf")),
    ]
)
values = st.one_of(json_values, ints, odd_tensors)


def config_paths(config, prefix=()):
    for key, value in config.items():
        yield (*prefix, key)
        if isinstance(value, dict):
            yield from config_paths(value, (*prefix, key))


CONFIG_PATHS = list(config_paths(CONFIG))


@st.composite
def mutated_fields(draw: st.DrawFn) -> bytes:
    """The valid checkpoint dict with config values, tensors (shape, dtype, NaN, missing,
    extra) or top-level keys replaced or removed."""
    ckpt = copy.copy(CKPT)
    ckpt["config"] = copy.deepcopy(CKPT["config"])
    ckpt["state_dict"] = dict(CKPT["state_dict"])
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(("config", "config", "tensor", "tensor", "top")))
        if where == "config" and isinstance(ckpt.get("config"), dict):
            *outer, key = draw(st.sampled_from(CONFIG_PATHS))
            node = ckpt["config"]
            for k in outer:
                node = node.get(k) if isinstance(node, dict) else None
            if isinstance(node, dict):
                if draw(st.integers(0, 5)):
                    node[key] = draw(values | st.lists(ints, max_size=5))
                else:
                    node.pop(key, None)
        elif where == "tensor" and isinstance(ckpt.get("state_dict"), dict):
            name = draw(st.sampled_from(TENSORS))
            op = draw(st.sampled_from(("value", "drop", "extra", "scale")))
            if op == "value":
                ckpt["state_dict"][name] = draw(odd_tensors | json_values)
            elif op == "drop":
                ckpt["state_dict"].pop(name, None)
            elif op == "extra":
                ckpt["state_dict"][name + ".extra"] = torch.zeros(2)
            elif isinstance(ckpt["state_dict"].get(name), torch.Tensor):
                ckpt["state_dict"][name] = ckpt["state_dict"][name] * 1e39  # inf in float32
        else:
            key = draw(st.sampled_from(["format", "version", "kind", "config", "state_dict"]))
            if draw(st.integers(0, 4)):
                ckpt[key] = draw(values | st.sampled_from(["teacher", "fsve"]))
            else:
                ckpt.pop(key, None)
    return to_bytes(ckpt)


test_random_bytes, test_random_bytes_slow = fuzz(20, data=st.binary(max_size=256))(check)
test_mutated_bytes, test_mutated_bytes_slow = fuzz(20, data=mutated(VALID))(check)
test_mutated_fields, test_mutated_fields_slow = fuzz(60, data=mutated_fields())(check)


def test_unmutated_checkpoint_loads_back(tmp_path):
    path = tmp_path / "c.pt"
    path.write_bytes(VALID)
    model, ckpt = load_model(path, kind="fsve")
    assert ckpt["config"] == CONFIG
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, CKPT["state_dict"][name])


def test_torch_pickle_header_alone_is_one_line(tmp_path):
    path = tmp_path / "c.pt"
    path.write_bytes(b"\x80\x02")
    with pytest.raises(CheckpointError, match=f"^{path}: not an fsve checkpoint"):
        load_model(path)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        # found by fuzzing: a tensor where a value was expected gave a multi-line message or
        # "Boolean value of Tensor with no values is ambiguous" (RuntimeError)
        ({"version": torch.zeros(0)}, "checkpoint version tensor.* is not supported"),
        ({"format": torch.zeros(3, 3)}, "not an fsve checkpoint .format tensor"),
        ({"kind": torch.zeros(3, 3)}, "unknown model kind tensor"),
        ({"config": {**CONFIG, "height": torch.zeros(3, 3)}}, "bad model config .config key"),
    ],
)
def test_tensors_in_place_of_values_are_one_line(tmp_path, change, match):
    path = tmp_path / "c.pt"
    path.write_bytes(to_bytes({**CKPT, **change}))
    with pytest.raises(CheckpointError, match=f"^{path}: {match}") as err:
        load_model(path)
    assert "\n" not in str(err.value)
