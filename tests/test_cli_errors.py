"""Every command fails in one line (issue 16, items 8 and 12): each case runs the command's real
``main`` on a real bad file (written here with numpy, h5py, nir and torch) and asserts exit
code 2, exactly one line on stderr holding the expected fragment (the file's name among them),
nothing printed before it when the refusal must come before any work, and that the refused
output was not created. Stale output sets (item 7) are in ``tests/export/test_output_sets.py``.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
import torch

from export.lava.exchange import save_run
from export.lava.graph import LIFQ, LavaGraph, LavaLayer, Synapse
from export.nir.host import HostProgram

ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "checkpoints" / "fsve-tiny-distilled-seed0.pt"
MAINS = {  # `python -m NAME` -> the module whose main() it runs
    "export.sim": "export.sim.cli",
    "export.map": "export.mapping.cli",
    "export.loihi": "export.loihi.cli",
    "export.lava": "export.lava.cli",
    "export.nir": "export.nir.cli",
    "energy.profile": "energy.profile.cli",
    "fsve.eval": "fsve.eval.__main__",
    "fsve.fewshot": "fsve.fewshot.__main__",
    "fsve.data": "fsve.data.__main__",
}
UNWRITABLE = Path("/proc/x")  # no one may create files in /proc, root included


class Evil:
    """Pickled into a host program: unpickling it would run ``print`` (it must not)."""

    def __reduce__(self):
        return (print, ("EVIL RAN",))


def _lava_files(d: Path) -> None:
    """``good.npz`` (a real run file) and one broken variant per way a run file can be bad."""
    rng = np.random.default_rng(0)
    c1 = Synapse("img", rng.integers(-40, 120, (2, 1, 3, 3)), stride=2, padding=1)
    layers = (
        LavaLayer("c1", (2, 3, 3), LIFQ(du=500, dv=250, vth=50), (c1,)),
        LavaLayer("out", (4,), LIFQ(du=200, dv=400, vth=20), (Synapse("c1", np.ones((4, 18))),)),
    )
    x = (rng.random((5, 1, 6, 6)) < 0.3).astype(np.int8)
    good = save_run(d / "good.npz", LavaGraph({"img": (1, 6, 6)}, layers), {"img": x})
    with np.load(good) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["meta"]))
    weight = arrays["layer0.syn0.weight"]

    def npz(name: str, drop: str = "", **changes) -> None:
        kept = {k: v for k, v in arrays.items() if k != drop}
        np.savez(d / f"{name}.npz", **{**kept, **changes})

    def with_meta(name: str, value) -> None:
        npz(name, meta=np.array(json.dumps(value)))

    raw = good.read_bytes()
    (d / "notzip.npz").write_bytes(b"not a zip archive " * 8)
    (d / "empty.npz").write_bytes(b"")
    (d / "truncated.npz").write_bytes(raw[: len(raw) // 2])
    np.save(d / "array.npy", weight)  # a .npy, not an .npz
    npz("nometa", drop="meta")
    npz("metanotjson", meta=np.array("{not json"))
    npz("metanumbers", meta=np.arange(3))
    with_meta("metalist", [1, 2])
    with_meta("otherformat", {**meta, "format": "other"})
    with_meta("nolayers", {k: v for k, v in meta.items() if k != "layers"})
    npz("noweight", drop="layer0.syn0.weight")
    npz("floatweight", **{"layer0.syn0.weight": weight + 0.5})
    npz("weightshape", **{"layer0.syn0.weight": weight[:, :, :2]})
    npz("objects", **{"layer0.syn0.weight": np.array([{"a": 1}], dtype=object)})
    npz("inputshape", input0=x[:, :, :3])
    npz("inputstrings", input0=np.array(["a", "b"]))
    bad_du = [dict(la) for la in meta["layers"]]
    bad_du[0]["du"] = "fast"
    with_meta("dustring", {**meta, "layers": bad_du})


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """A folder of real good and bad inputs (names in the table below)."""
    d = tmp_path_factory.mktemp("bad")
    lif = nir.LIF(tau=np.full(3, 2e-3), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3))
    affine = nir.Affine(np.eye(3, dtype=np.float32), np.zeros(3, dtype=np.float32))
    nir.write(d / "small.nir", nir.NIRGraph.from_list(affine, lif))
    for name, new_type in (("unknown", b"FooNode"), ("latin1", "Lümmel".encode("latin-1"))):
        shutil.copy(d / "small.nir", d / f"{name}.nir")
        with h5py.File(d / f"{name}.nir", "r+") as f:
            node = f["node/nodes/affine"]
            del node["type"]
            node["type"] = np.bytes_(new_type)
    (d / "nothdf5.nir").write_bytes(b"\x89 this is not HDF5 " * 20)
    np.save(d / "x.npy", (np.random.default_rng(0).random((4, 3)) < 0.5).astype(np.float32))
    np.save(d / "strings.npy", np.array([["a", "b", "c"]] * 4))
    for name in ("evil", "truncated"):
        (d / name).mkdir()
        shutil.copy(d / "small.nir", d / name / "g.nir")
    torch.save({"ops": Evil()}, d / "evil" / "g.host.pt")
    HostProgram().save(d / "whole.host.pt")
    whole = (d / "whole.host.pt").read_bytes()
    (d / "truncated" / "g.host.pt").write_bytes(whole[: len(whole) // 2])
    (d / "base_list.json").write_text('{"base": ["paper"]}')
    (d / "target.json").write_bytes(b'{"name": "L\xfcmmel"}')  # latin-1, not UTF-8
    (d / "lava").mkdir()
    _lava_files(d / "lava")
    return d


LAVA_CASES = [  # (file, fragment) for `export.lava netx` and `run`: the file is read first
    ("notzip", "not an .npz file"),
    ("empty", "not an .npz file"),
    ("truncated", "truncated or corrupt"),
    ("array.npy", "not an .npz file"),
    ("nometa", "no JSON 'meta' string"),
    ("metanotjson", "meta is not JSON"),
    ("metanumbers", "no JSON 'meta' string"),
    ("metalist", "not a fsve-lava-run file"),
    ("otherformat", "not a fsve-lava-run file"),
    ("nolayers", "meta 'layers'"),
    ("noweight", "no 'layer0.syn0.weight'"),
    ("floatweight", "must hold integers"),
    ("weightshape", "synapse from 'img' gives"),
    ("objects", "object arrays"),
    ("inputshape", "input 'img' must be integer spikes"),
    ("inputstrings", "input 'img' must be integer spikes"),
    ("dustring", "'fast'"),
    ("missing", "no such file"),
]

# (id, argv with {d} for the files folder and {ckpt}, fragment, output that must not appear)
CASES = [
    *[
        (
            f"lava-{cmd}-{name}",
            [
                "export.lava",
                cmd,
                f"{{d}}/lava/{name}" + ("" if "." in name else ".npz"),
                "{d}/out.npz",
            ],
            frag,
            "out.npz",
        )
        for cmd in ("netx", "run")
        for name, frag in LAVA_CASES
    ],
    *[
        (
            f"{cmd}-unknown-node",
            [cmd, "{d}/unknown.nir", "--input", "{d}/x.npy", *extra],
            "node 'affine' has type 'FooNode'",
            None,
        )
        for cmd, extra in (
            ("export.sim", []),
            ("export.map", ["--out", "{d}/map"]),
            ("export.loihi", ["--out", "{d}/loihi"]),
            ("energy.profile", ["--out", "{d}/energy", "--layout", "T"]),
        )
    ],
    *[
        (
            f"{cmd}-not-hdf5",
            [cmd, "{d}/nothdf5.nir", "--input", "{d}/x.npy", *extra],
            "nothdf5.nir: not a readable NIR graph (not an HDF5 file)",
            None,
        )
        for cmd, extra in (
            ("export.sim", []),
            ("export.map", ["--out", "{d}/map"]),
            ("export.loihi", ["--out", "{d}/loihi"]),
            ("energy.profile", ["--out", "{d}/energy", "--layout", "T"]),
        )
    ],
    (
        "sim-non-utf8-type",
        ["export.sim", "{d}/latin1.nir", "--input", "{d}/x.npy"],
        "latin1.nir: not a readable NIR graph (UnicodeDecodeError",
        None,
    ),
    (
        "map-non-utf8-target",
        ["export.map", "{d}/small.nir", "--target", "{d}/target.json", "--out", "{d}/map"],
        "target.json: target file is not UTF-8",
        "map",
    ),
    *[
        (
            f"{cmd}-{name}-host",
            [cmd, f"{{d}}/{name}/g.nir", "--input", "{d}/x.npy", *extra],
            f"{name}/g.host.pt: {frag}",
            None,
        )
        for cmd, extra in (
            ("export.map", ["--out", "{d}/map"]),
            ("export.loihi", ["--out", "{d}/loihi"]),
        )
        for name, frag in (
            ("evil", "refused to load: it holds objects other than tensors"),
            ("truncated", "not a readable export.nir host program, truncated or corrupt"),
        )
    ],
    (
        "costs-base-list",
        [
            "energy.profile",
            "{d}/small.nir",
            "--input",
            "{d}/x.npy",
            "--layout",
            "T",
            "--costs",
            "{d}/base_list.json",
            "--out",
            "{d}/energy",
        ],
        "base_list.json: unknown base preset ['paper']",
        "energy",
    ),
    (
        "sim-string-input",
        ["export.sim", "{d}/small.nir", "--input", "{d}/strings.npy"],
        "strings.npy: expected numbers",
        None,
    ),
    *[
        (f"{argv[0]}-out-unwritable", argv, f"{UNWRITABLE}", None)
        for argv in (
            ["energy.profile", "{ckpt}", "--data", "{d}/nodata", "--out", str(UNWRITABLE)],
            ["energy.profile", "{d}/small.nir", "--input", "{d}/x.npy", "--out", str(UNWRITABLE)],
            ["export.sim", "{d}/small.nir", "--input", "{d}/x.npy", "--out", f"{UNWRITABLE}/y.npz"],
            [
                "fsve.fewshot",
                "{ckpt}",
                "--data",
                "{d}/nodata",
                "--shots",
                "1",
                "--seeds",
                "0",
                "--epochs",
                "1",
                "--out",
                str(UNWRITABLE),
            ],
            ["fsve.eval", "{ckpt}", "--data", "{d}/nodata", "--out", f"{UNWRITABLE}/m.json"],
            ["export.nir", "{ckpt}", f"{UNWRITABLE}/g.nir", "--data", "{d}/nodata"],
            ["export.loihi", "{d}/small.nir", "--input", "{d}/x.npy", "--out", str(UNWRITABLE)],
            ["export.map", "{d}/small.nir", "--input", "{d}/x.npy", "--out", str(UNWRITABLE)],
            [
                "export.lava",
                "compile",
                "{d}/small.nir",
                "--input",
                "{d}/x.npy",
                f"{UNWRITABLE}/run.npz",
            ],
            ["export.lava", "netx", "{d}/lava/good.npz", f"{UNWRITABLE}/g.net"],
            ["export.lava", "run", "{d}/lava/good.npz", f"{UNWRITABLE}/res.npz"],
        )
    ],
    (
        "lava-out-over-input",
        ["export.lava", "netx", "{d}/lava/good.npz", "{d}/lava/good.npz"],
        "refusing to write over an input",
        None,
    ),
    (
        "sim-out-over-input",
        ["export.sim", "{d}/small.nir", "--input", "{d}/x.npy", "--out", "{d}/x.npy"],
        "refusing to write over an input",
        None,
    ),
    (
        "eval-out-is-a-folder",
        ["fsve.eval", "{ckpt}", "--data", "{d}/nodata", "--out", "{d}/lava.json"],
        "is a directory",
        None,
    ),
]


def _argv(argv: list[str], d: Path) -> list[str]:
    return [a.format(d=d, ckpt=CKPT) for a in argv]


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    """``python -m argv[0] argv[1:]`` in this process: (exit code, stdout, stderr)."""
    main = importlib.import_module(MAINS[argv[0]]).main
    try:
        rc = main(argv[1:])
    except SystemExit as err:  # argparse
        rc = err.code
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize(
    ("argv", "fragment", "absent"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_one_line_and_exit_2(files, capsys, argv, fragment, absent):
    (files / "lava.json").mkdir(exist_ok=True)  # a folder where a file is asked for
    rc, out, err = run_main(_argv(argv, files), capsys)
    assert rc == 2, (out, err)
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert fragment in err, err
    assert "Traceback" not in err and "EVIL RAN" not in out + err
    if str(UNWRITABLE) in " ".join(argv):
        assert out == "", "the output must be checked before any work is done"
    if absent is not None:
        assert not (files / absent).exists()


def test_lava_run_without_lava_says_which_venv(files, capsys):
    """`export.lava run` on a good file under a Python without Lava: one line naming
    .venv-lava and `make lava-env`, not an ImportError traceback."""
    if importlib.util.find_spec("lava") is not None:
        pytest.skip("Lava is installed in this interpreter")
    rc, _, err = run_main(
        ["export.lava", "run", str(files / "lava/good.npz"), str(files / "res.npz")], capsys
    )
    assert rc == 2 and err.count("\n") == 1, err
    assert "make lava-env" in err and ".venv-lava" in err and sys.executable in err
    assert not (files / "res.npz").exists()


def test_lava_netx_of_a_good_file_still_works(files, capsys):
    """The strict reader accepts what save_run writes (the netx file is HDF5 with 3 layers)."""
    out = files / "good.net"
    rc, _, err = run_main(["export.lava", "netx", str(files / "lava/good.npz"), str(out)], capsys)
    assert rc == 0, err
    with h5py.File(out) as f:
        types = [f["layer"][str(i)]["type"][0] for i in range(len(f["layer"]))]
    assert types == [b"input", b"conv", b"flatten", b"dense"]
    assert [p.name for p in files.glob(".good.net*")] == []  # no temporary left


def test_nir_graph_with_unknown_node_names_node_and_type(files):
    from export.graph import read_nir

    with pytest.raises(ValueError, match=r"unknown\.nir: node 'affine' has type 'FooNode'"):
        read_nir(files / "unknown.nir")
    assert len(read_nir(files / "small.nir").nodes) == 4  # input, affine, lif, output


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc")
def test_synth_out_of_memory_is_one_line(tmp_path):
    """A real MemoryError: the address space is capped 200 MB above the imports, then a
    3000x3000 clip (under the 4 GB per-clip estimate limit, so not refused up front) is
    rendered. One line with the size, exit 2, no dataset folder left."""
    code = (
        "import re, resource, sys\n"
        "from fsve.data.__main__ import main\n"
        "import fsve.data.synth.generate, fsve.data.synth.render, fsve.data.dat, tqdm\n"
        "status = open('/proc/self/status').read()\n"
        "vm = int(re.search(r'VmSize:\\s+(\\d+) kB', status).group(1)) * 1024\n"
        "resource.setrlimit(resource.RLIMIT_AS, (vm + 200 * 2**20, resource.RLIM_INFINITY))\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    out = tmp_path / "big"
    argv = [
        "synth",
        "--out",
        str(out),
        "--size",
        "3000x3000",
        "--frames",
        "20",
        "--train",
        "1",
        "--val",
        "0",
        "--test",
        "0",
        "--workers",
        "1",
        "--quiet",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1, proc.stderr[-2000:]
    assert re.search(r"out of memory rendering clips of 20 frames at 3000x3000", proc.stderr)
    assert not out.exists()
