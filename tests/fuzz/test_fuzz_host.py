"""Fuzzing the host-program reader (``export.nir.HostProgram.load`` of ``OUT.host.pt``).

Errors: ``ValueError`` (not a torch file, truncated, other pickled objects, not a host
program, a spec with fields of the wrong type or shape, non-finite tensors) and
``FileNotFoundError``, one line naming the file. A program it returns has ops of the known
kinds with string names, positive heads and grids and finite tensors of the right shapes; an
unmutated file gives back the program that was saved.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pytest
import torch
from fuzzing import expect, fuzz, json_values, mutated
from hypothesis import strategies as st

from export.nir.host import HostESDSA, HostProgram, HostReadout

ERRORS = (ValueError, FileNotFoundError)


def program() -> HostProgram:
    torch.manual_seed(0)
    esdsa = HostESDSA("attn", ("q", "k", "v"), "attn_in", 2, (2, 2), torch.rand(2), torch.rand(4))
    readout = HostReadout("head", ("final",), "embedding", (2, 2), torch.randn(3, 4), None)
    return HostProgram([esdsa, readout], "input", "clip")


PROGRAM = program()


def to_bytes(data) -> bytes:
    buf = io.BytesIO()
    torch.save(data, buf)
    return buf.getvalue()


VALID = to_bytes(PROGRAM.to_dict())


def sane(host: HostProgram) -> None:
    assert host.input_layout in ("clip", "time_first") and isinstance(host.input_name, str)
    for op in host.ops:
        assert isinstance(op, HostESDSA | HostReadout)
        assert all(isinstance(n, str) for n in (op.name, op.output, *op.inputs))
        assert len(op.grid) == 2 and min(op.grid) > 0
        for t in op.buffers():
            assert t.is_floating_point() and bool(torch.isfinite(t).all())
        if isinstance(op, HostESDSA):
            assert op.heads > 0 and op.count_threshold.shape == (op.heads,)
        else:
            assert op.weight.ndim == 2


def check(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.host.pt"
        path.write_bytes(data)
        host = expect(lambda: HostProgram.load(path), ERRORS, path)
    if host is not None:
        sane(host)


tensors = st.sampled_from(
    [
        torch.zeros(0),
        torch.rand(2),
        torch.rand(4),
        torch.rand(3, 4),
        torch.full((2,), float("nan")),
        torch.ones(2, dtype=torch.int64),
        torch.ones(2, dtype=torch.complex64),
    ]
)
values = st.one_of(json_values, tensors, st.tuples(st.integers(-2, 3), st.integers(-2, 3)))
OP_KEYS = ["kind", "name", "inputs", "output", "heads", "grid", "count_threshold"]
OP_KEYS += ["out_threshold", "weight", "bias", "extra"]


@st.composite
def mutated_fields(draw: st.DrawFn) -> bytes:
    """The valid program's dict with fields replaced (any value, tensors of other shapes and
    dtypes), removed, or whole ops replaced."""
    d = PROGRAM.to_dict()
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(("top", "op", "op", "op", "ops")))
        if where == "top":
            key = draw(st.sampled_from(["format", "version", "input_name", "input_layout", "ops"]))
            d[key] = draw(values)
        elif where == "ops":
            d["ops"] = draw(st.lists(values, max_size=2))
        elif isinstance(d.get("ops"), list) and d["ops"] and isinstance(d["ops"][0], dict):
            op = d["ops"][draw(st.integers(0, len(d["ops"]) - 1))]
            if isinstance(op, dict):
                key = draw(st.sampled_from(OP_KEYS))
                if draw(st.integers(0, 4)):
                    op[key] = draw(values)
                else:
                    op.pop(key, None)
    return to_bytes(d)


test_random_bytes, test_random_bytes_slow = fuzz(25, data=st.binary(max_size=256))(check)
test_mutated_bytes, test_mutated_bytes_slow = fuzz(30, data=mutated(VALID))(check)
test_mutated_fields, test_mutated_fields_slow = fuzz(60, data=mutated_fields())(check)


def test_unmutated_program_reads_back(tmp_path):
    path = PROGRAM.save(tmp_path / "g.host.pt")
    host = HostProgram.load(path)
    assert host.input_layout == "clip" and [op.name for op in host.ops] == ["attn", "head"]
    for a, b in zip(host.ops, PROGRAM.ops, strict=True):
        for (ka, ta), (kb, tb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            assert ka == kb and torch.equal(ta, tb)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        # found by fuzzing (and issue 16, item 8): torch's errors without the file
        (b"garbage", "not an export.nir host program .neither a torch zip archive"),
        (b"\x80\x02garbage", "not an export.nir host program .a pickle torch cannot read"),
        (VALID[: len(VALID) // 2], "not a readable export.nir host program, truncated"),
        (to_bytes([1, 2]), "not a host program .holds a list"),
        # found by fuzzing: a spec of the wrong types failed as KeyError/AttributeError
        (to_bytes({**PROGRAM.to_dict(), "ops": [{"kind": "readout"}]}), "bad host program"),
        (to_bytes({**PROGRAM.to_dict(), "ops": [[1]]}), "bad host program"),
    ],
)
def test_a_broken_host_program_is_one_line_naming_the_file(tmp_path, data, match):
    path = tmp_path / "g.host.pt"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=f"^{path}: {match}"):
        HostProgram.load(path)
