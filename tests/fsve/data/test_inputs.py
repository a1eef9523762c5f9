"""Inputs refused before harm (issue 16, items 2, 4, 5, 11): no fsve.data command writes over
its own inputs or into a directory, oversized synth requests are refused with an estimate,
thresholds that cannot make an image are refused, labels are 0..C-1 with a name each."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from fsve.cli import UsageError, check_output
from fsve.data.__main__ import main
from fsve.data.camera import simulate
from fsve.data.dat import DatWriter, write_dat
from fsve.data.manifest import read_manifest, write_manifest
from fsve.data.recon import check_threshold, tfi, tfp
from fsve.data.synth import SynthConfig, check_size, dataset_bytes

ONE_TEST_CLIP = ["--train", "0", "--val", "0", "--test", "1"]  # 12 clips, one per class


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.endswith("\n") and err.count("\n") == 1, err
    return err.strip()


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def video(tmp_path) -> Path:
    cv2 = pytest.importorskip("cv2")
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (48, 32))
    for k in range(6):
        frame = np.full((32, 48, 3), 60, dtype=np.uint8)
        frame[10:20, 4 + 6 * k : 14 + 6 * k] = 230
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture
def dat(tmp_path) -> Path:
    scene = np.linspace(0.2, 0.8, 16 * 24).reshape(16, 24)
    path = tmp_path / "s.dat"
    write_dat(path, simulate(np.broadcast_to(scene, (60, 16, 24)), seed=0))
    return path


def test_convert_never_writes_over_its_input(tmp_path, video, capsys):
    before = digest(video)
    (tmp_path / "link.avi").symlink_to(video.name)
    os.link(video, tmp_path / "hard.avi")
    listing = names(tmp_path)
    for src, out in [
        (video, video),  # the case of the issue: the source video was overwritten
        (tmp_path / "link.avi", video),  # a symlink to the output
        (video, tmp_path / "link.avi"),  # an output that is a symlink to the input
        (video, tmp_path / "hard.avi"),  # a hard link: the same file under another name
    ]:
        assert main(["convert", str(src), str(out), "--size", "16x24", "--quiet"]) == 2
        err = one_line_error(capsys)
        assert err == (
            f"error: {out}: is the input {src}; refusing to write over an input"
            " (choose another output path)"
        )
    assert digest(video) == before  # no byte of the input changed
    assert names(tmp_path) == listing  # and no temporary file was left


def test_convert_and_show_refuse_a_directory_output(tmp_path, video, dat, capsys):
    folder = tmp_path / "out"
    folder.mkdir()
    listing = names(tmp_path)
    assert main(["convert", str(video), str(folder), "--size", "16x24", "--quiet"]) == 2
    assert one_line_error(capsys) == f"error: {folder}: is a directory; expected a file path"
    assert main(["show", str(dat), "--size", "16x24", "-t", "30", "--out", str(folder)]) == 2
    assert one_line_error(capsys) == f"error: {folder}: is a directory; expected a file path"
    assert names(tmp_path) == listing and names(folder) == []
    # an output below a file cannot be created either
    assert main(["convert", str(video), str(video / "x.dat"), "--quiet"]) == 2
    assert one_line_error(capsys) == (
        f"error: {video / 'x.dat'}: cannot be created: {video} is not a folder"
    )


def test_show_never_writes_over_its_input(dat, capsys):
    before = digest(dat)
    assert main(["show", str(dat), "--size", "16x24", "-t", "30", "--out", str(dat)]) == 2
    assert "refusing to write over an input" in one_line_error(capsys)
    assert digest(dat) == before


def test_synth_refuses_a_file_as_its_folder(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("keep me")
    assert main(["synth", "--out", str(target), "--quiet"]) == 2
    assert one_line_error(capsys) == f"error: {target}: exists and is not a folder"
    assert target.read_text() == "keep me"


def test_check_output_accepts_new_paths_and_leaves_nothing(tmp_path):
    assert check_output(tmp_path / "a" / "b.dat", [tmp_path / "in.dat"]) == tmp_path / "a/b.dat"
    assert check_output(tmp_path / "new", folder=True) == tmp_path / "new"
    assert names(tmp_path) == []  # the writability probe is removed, no folder made
    (tmp_path / "in.dat").write_bytes(b"x")
    with pytest.raises(UsageError, match="is the input"):
        check_output(tmp_path / "." / "in.dat", [tmp_path / "in.dat"])


def test_dat_writer_leaves_no_temporary_file_when_the_move_fails(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError):
        with DatWriter(tmp_path / "d", 8, 8) as writer:
            writer.write(np.ones((2, 8, 8), dtype=bool))
    assert names(tmp_path) == ["d"]


def test_synth_size_estimate_arithmetic():
    # 64x64 = 512 bytes a frame x 250 frames x 12 classes x (40 + 10 + 10) clips
    assert dataset_bytes(SynthConfig()) == 512 * 250 * 12 * 60 == 92_160_000
    check_size(SynthConfig())  # the default set is well inside the limit


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # 1e10 pixels / 8 = 1.25e9 bytes a frame x 250 frames x 720 clips = 2.25e14 bytes
        (
            ["--size", "100000x100000"],
            "720 clips of 250 frames at 100000x100000 would write ~225,000 GB, more than the"
            " limit of 20 GB (raise it with --max-gb if you mean it)",
        ),
        # 512 bytes a frame x 1e9 frames x 720 clips = 3.6864e14 bytes
        (["--frames", "1e9"], "720 clips of 1000000000 frames at 64x64 would write ~368,640 GB"),
        # 12 clips x 1000 frames x 8 bytes = 96 kB, over a limit of 10 kB
        (
            [*ONE_TEST_CLIP, "--size", "8x8", "--frames", "1000", "--max-gb", "1e-5"],
            "12 clips of 1000 frames at 8x8 would write ~9.6e-05 GB, more than the limit of"
            " 1e-05 GB",
        ),
        # 1e8 frames x 100 bytes of trajectory = 10 GB of memory for one clip
        (
            [*ONE_TEST_CLIP, "--size", "8x8", "--frames", "1e8", "--max-gb", "100"],
            "rendering one clip of 100000000 frames at 8x8 would need ~10 GB of memory, more"
            " than 4 GB",
        ),
    ],
)
def test_synth_refuses_oversized_requests_before_allocating(tmp_path, capsys, args, message):
    out = tmp_path / "data"
    assert main(["synth", "--out", str(out), "--quiet", *args]) == 2
    assert one_line_error(capsys).startswith(f"error: {message}")
    assert not out.exists()


def test_synth_max_gb_raises_the_limit(tmp_path, capsys):
    args = [*ONE_TEST_CLIP, "--size", "8x8", "--frames", "40"]
    # 12 clips x 40 frames x 8 bytes = 3840 bytes: refused under 1e-6 GB, made under 1e-5 GB
    assert main(["synth", "--out", str(tmp_path / "a"), "--quiet", *args, "--max-gb", "1e-6"]) == 2
    assert "~3.84e-06 GB" in one_line_error(capsys)
    assert main(["synth", "--out", str(tmp_path / "a"), "--quiet", *args, "--max-gb", "1e-5"]) == 0
    assert sum(p.stat().st_size for p in (tmp_path / "a" / "test").iterdir()) == 3840


def test_show_refuses_thresholds_that_cannot_make_an_image(dat, capsys):
    base = ["show", str(dat), "--size", "16x24", "-t", "30", "--out", str(dat.parent / "f.png")]
    cases = {
        "0": "threshold 0 gives an all-black image: grey = 255 x threshold x spike rate is"
        " never above 0; use a threshold above 0.002",
        "-1": "threshold -1 gives an all-black image",
        # a pixel firing every frame: 0.001 x 255 = 0.255 grey levels, rounds to 0
        "0.001": "threshold 0.001 gives an all-black image: a pixel firing every frame maps to"
        " 0.26 grey levels (< 0.5)",
        # TFI, half window 20: a pixel without a spike gets interval 41: 1e4 / 41 x 255 > 255
        "1e4": "threshold 10000 gives an all-white image: a pixel without a spike in the"
        " 41-frame window maps to 62195 grey levels (> 255); use a threshold below 40.92",
        "nan": "threshold must be a finite number > 0, got nan",
    }
    for value, message in cases.items():
        assert main([*base, "--threshold", value]) == 2
        assert one_line_error(capsys).startswith(f"error: {message}")
    assert not (dat.parent / "f.png").exists()
    # TFP has no all-white bound (a pixel without a spike stays 0): 1e4 is an image
    assert main([*base, "--threshold", "1e4", "--method", "tfp"]) == 0


def test_show_explains_a_uniform_image(tmp_path, capsys):
    write_dat(tmp_path / "dark.dat", np.zeros((50, 8, 8), dtype=bool))
    assert main(["show", str(tmp_path / "dark.dat"), "--size", "8x8", "-t", "25"]) == 0
    assert "note: no spike within 20 frames of frame 25" in capsys.readouterr().out


def test_recon_api_refuses_bad_thresholds():
    spikes = np.ones((5, 8, 8), dtype=bool)
    for bad in (0.0, -2.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="threshold must be a finite number > 0"):
            tfi(spikes, 2, half_window=2, threshold=bad)
        with pytest.raises(ValueError, match="threshold must be a finite number > 0"):
            tfp(spikes, 2, half_window=2, threshold=bad)
    with pytest.raises(ValueError, match="alpha must be a finite number > 0"):
        tfi(spikes, 2, half_window=2, alpha=0.0)
    check_threshold("tfi", 5.0, 20)  # the camera's threshold is fine
    check_threshold("tfp", 1.0, 20)  # SpikeCV raw as well


def _labelled_folder(root: Path, labels: list[int], names: list[object]) -> None:
    rows = []
    for i, (label, name) in enumerate(zip(labels, names, strict=True)):
        write_dat(root / f"c{i}.dat", np.zeros((4, 8, 8), dtype=bool))
        rows.append(
            dict(
                path=f"c{i}.dat",
                split="train",
                label=label,
                class_name=name,
                caption="x",
                height=8,
                width=8,
                frames=4,
            )
        )
    write_manifest(root, rows)


def test_manifest_labels_are_contiguous_with_a_name_each(tmp_path, capsys):
    # the case of the issue: label 99 among 0..12 made "100 classes" with 87 empty prompts
    labels = [*range(13), 99, 99]
    _labelled_folder(tmp_path, labels, [f"class {k}" for k in labels])
    manifest = tmp_path / "manifest.csv"
    with pytest.raises(ValueError) as err:
        read_manifest(tmp_path)
    # 14 distinct labels must be 0..13: rows 15 and 16 (header = line 1) hold 99, 13 is missing
    assert str(err.value) == (
        f"{manifest}: labels must be 0..13 for 14 classes, but row 15, 16 has label 99"
        " and label 13 has no row"
    )
    assert main(["info", str(tmp_path)]) == 2
    assert one_line_error(capsys) == f"error: {err.value}"
    _labelled_folder(tmp_path, [0, 1, 2], ["a", "  ", "c"])
    with pytest.raises(ValueError, match=r"manifest\.csv: row 3: no class_name; every label"):
        read_manifest(tmp_path)
    _labelled_folder(tmp_path, [1, 2], ["b", "c"])  # no label 0
    with pytest.raises(
        ValueError, match="labels must be 0..1 for 2 classes, but row 3 has label 2"
    ):
        read_manifest(tmp_path)
    _labelled_folder(tmp_path, [1, 0, 1], ["b", "a", "b"])
    assert sorted(set(read_manifest(tmp_path)["label"])) == [0, 1]


def test_malformed_manifests_are_one_line_naming_the_file(tmp_path):
    _labelled_folder(tmp_path, [0, 1], ["a", "b"])
    manifest = tmp_path / "manifest.csv"
    header, first, second = manifest.read_text().splitlines()
    cases = {
        # pandas' tokenizer message ends in a newline: the error must still be one line
        "unreadable CSV (Error tokenizing data. C error: Expected 8 fields in line 3, saw 9)": [
            header,
            first,
            second + ",x",
            first,
        ],
        # every row one field too many: pandas would make the first field an index
        "rows have more fields than the header's 8": [header, first + ",x", second + ",x"],
        # inf is no integer (it used to escape as pandas' IntCastingNaNError, without the file)
        "row 3: label=inf is not an integer": [header, first, second.replace(",1,", ",inf,")],
    }
    for message, lines in cases.items():
        manifest.write_text("\n".join(lines) + "\n")
        with pytest.raises(ValueError) as err:
            read_manifest(tmp_path)
        assert str(err.value) == f"{manifest}: {message}"
