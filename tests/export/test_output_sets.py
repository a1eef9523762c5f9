"""A command that writes a set of files writes a consistent set (issue 16, case 7): a rerun
into the same place removes the files of its own earlier set that it does not write now
(``export.nir``'s ``_layers.csv`` after ``--no-verify``; ``energy.profile``'s
``conventions.csv`` after ``--convention simple``), and every other file there keeps its bytes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import nir
import numpy as np

from energy.profile.cli import main as profile_main
from export.nir.cli import main as nir_main
from fsve.io import replace_output_set


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def unrelated_files(folder: Path) -> dict[Path, str]:
    """Files a user keeps beside the outputs, some with names close to the outputs' names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = ("notes.txt", "g_partition_layers.csv.bak", "old_layers.csv", "conventions.csv.keep")
    for i, name in enumerate(names):
        (folder / name).write_bytes(bytes(range(i, 256)))
    return {folder / name: digest(folder / name) for name in names}


def test_replace_output_set_removes_only_unwritten_names_of_the_family(tmp_path):
    keep = unrelated_files(tmp_path)
    for name in ("a.csv", "b.csv", "c.csv"):
        (tmp_path / name).write_text(name)
    (tmp_path / "d.csv").mkdir()  # a folder with a family name is never removed
    family = [tmp_path / n for n in ("a.csv", "b.csv", "c.csv", "d.csv", "e.csv")]
    removed = replace_output_set(family, [tmp_path / "a.csv"])
    assert sorted(p.name for p in removed) == ["b.csv", "c.csv"]
    assert (tmp_path / "a.csv").read_text() == "a.csv" and (tmp_path / "d.csv").is_dir()
    assert {p: digest(p) for p in keep} == keep


def test_export_nir_rerun_leaves_no_stale_layers_csv(micro_checkpoint, tiny_data, tmp_path, capsys):
    out = tmp_path / "exp"
    keep = unrelated_files(out)
    argv = [str(micro_checkpoint), str(out / "g.nir"), "--data", str(tiny_data), "--samples", "2"]
    assert nir_main(argv) == 0
    first = sorted(p.name for p in out.iterdir())
    assert "g_partition_layers.csv" in first  # verified: per-layer comparison written
    assert nir_main([*argv, "--no-verify"]) == 0
    capsys.readouterr()
    now = sorted(p.name for p in out.iterdir())
    assert set(first) - set(now) == {"g_partition_layers.csv"}  # stale: removed
    assert {"g.nir", "g.host.pt", "g_partition.txt", "g_partition_modules.csv"} <= set(now)
    assert {p: digest(p) for p in keep} == keep  # other files: every byte kept


def test_energy_profile_rerun_leaves_no_stale_conventions_csv(tmp_path, capsys):
    lif = nir.LIF(tau=np.full(4, 2e-3), r=np.ones(4), v_leak=np.zeros(4), v_threshold=np.ones(4))
    affine = nir.Affine(np.eye(4, dtype=np.float32) * 2, np.zeros(4, dtype=np.float32))
    nir.write(tmp_path / "g.nir", nir.NIRGraph.from_list(affine, lif))
    np.save(tmp_path / "x.npy", (np.random.default_rng(0).random((6, 2, 4)) < 0.5).astype(np.uint8))
    out = tmp_path / "energy"
    keep = unrelated_files(out)
    argv = [str(tmp_path / "g.nir"), "--input", str(tmp_path / "x.npy"), "--out", str(out)]
    assert profile_main([*argv, "--convention", "sdt"]) == 0
    first = {p.name for p in out.iterdir()}
    assert "conventions.csv" in first
    assert profile_main([*argv, "--convention", "simple"]) == 0
    capsys.readouterr()
    now = {p.name for p in out.iterdir()}
    assert first - now == {"conventions.csv"}
    assert {"summary.csv", "layers.csv", "table.txt", "provenance.json"} <= now
    assert '"simple"' in (out / "provenance.json").read_text()
    assert {p: digest(p) for p in keep} == keep
