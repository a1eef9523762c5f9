"""Video file -> spike stream conversion (fsve.data.video), on tiny synthetic videos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from fsve.data.dat import read_dat  # noqa: E402
from fsve.data.video import (  # noqa: E402
    convert_video,
    fit_frame,
    frames_from_video,
    interpolate_flow,
    interpolate_linear,
    iter_upsampled,
    to_gray_unit,
)


def write_video(
    path: Path, frames: list[np.ndarray], fourcc: str = "MJPG", fps: float = 25.0
) -> Path:
    """Write gray uint8 frames ``[H, W]`` as a 3-channel video; skips if the codec won't open."""
    h, w = frames[0].shape
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    if not writer.isOpened():
        pytest.skip(f"this OpenCV build cannot write {fourcc} to {path.suffix}")
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def grey_frames(n: int, h: int, w: int, value: int) -> list[np.ndarray]:
    return [np.full((h, w), value, np.uint8) for _ in range(n)]


def moving_square(n: int, h: int = 32, w: int = 64, side: int = 10, step: int = 4) -> list:
    frames = []
    for k in range(n):
        f = np.zeros((h, w), np.uint8)
        x = 4 + k * step
        f[(h - side) // 2 : (h + side) // 2, x : x + side] = 255
        frames.append(f)
    return frames


def texture(h: int, w: int, seed: int = 1) -> np.ndarray:
    noise = np.random.default_rng(seed).random((h, w)).astype(np.float32)
    base = cv2.GaussianBlur(noise, (0, 0), 2)
    return (base - base.min()) / (base.max() - base.min())


# --------------------------------------------------------------------------- helpers


def test_to_gray_unit_luminance_and_range() -> None:
    bgr = np.zeros((2, 8, 3), np.uint8)
    bgr[..., 2] = 255  # pure red
    gray = to_gray_unit(bgr)
    assert gray.dtype == np.float32 and gray.shape == (2, 8)
    np.testing.assert_allclose(gray, 0.299, atol=2 / 255)  # BT.601 red weight
    np.testing.assert_allclose(to_gray_unit(np.full((2, 4), 255, np.uint8)), 1.0)
    np.testing.assert_allclose(to_gray_unit(np.full((2, 4), 2.0)), 1.0)  # floats clipped
    with pytest.raises(ValueError, match="shape"):
        to_gray_unit(np.zeros((2, 2, 2), np.uint8))


def test_fit_frame_center_and_resize() -> None:
    img = np.arange(12 * 20, dtype=np.float32).reshape(12, 20)
    np.testing.assert_array_equal(fit_frame(img, (4, 8), "center"), img[4:8, 6:14])
    assert fit_frame(img, None, "center") is img
    with pytest.raises(ValueError, match="resize"):
        fit_frame(img, (16, 8), "center")
    # resize keeps the aspect ratio: a 12x20 frame to 6x6 uses the centre 12x12 window
    ones = np.zeros((12, 20), np.float32)
    ones[:, 4:16] = 1.0
    out = fit_frame(ones, (6, 6), "resize")
    assert out.shape == (6, 6)
    np.testing.assert_allclose(out, 1.0)
    assert fit_frame(img, (24, 40), "resize").shape == (24, 40)  # enlarging works too
    with pytest.raises(ValueError, match="crop mode"):
        fit_frame(img, (4, 8), "stretch")


def test_interpolate_linear_midpoint_is_mean() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 8, 16), dtype=np.float32)
    out = interpolate_linear(a, b, 2)
    assert out.shape == (2, 8, 16) and out.dtype == np.float32
    np.testing.assert_array_equal(out[0], a)
    np.testing.assert_allclose(out[1], (a + b) / 2, atol=1e-6)
    quarter = interpolate_linear(a, b, 4)[1]
    np.testing.assert_allclose(quarter, 0.75 * a + 0.25 * b, atol=1e-6)


def test_interpolate_flow_puts_pattern_half_way() -> None:
    base = texture(48, 112)
    shift = 8  # the content moves right by 8 pixels between a and b
    a, b, truth = base[:, 16:96], base[:, 16 - shift : 96 - shift], base[:, 12:92]
    flow = interpolate_flow(a, b, 2)
    linear = interpolate_linear(a, b, 2)
    assert flow.shape == (2, 48, 80)
    np.testing.assert_allclose(flow[0], a)
    inner = np.s_[:, 12:-12]  # away from the borders, where content enters and leaves

    def corr(x: np.ndarray) -> float:
        return float(np.corrcoef(x[inner].ravel(), truth[inner].ravel())[0, 1])

    assert corr(flow[1]) > 0.98
    assert corr(flow[1]) > corr(linear[1]) + 0.2
    assert np.abs(flow[1] - truth)[inner].mean() < 0.25 * np.abs(linear[1] - truth)[inner].mean()


def test_iter_upsampled_counts_and_times() -> None:
    frames = [np.full((2, 4), v, np.float32) for v in (0.0, 1.0, 0.5)]
    out = list(iter_upsampled(frames, 4, "linear"))
    assert len(out) == (3 - 1) * 4 + 1
    expected = [0, 0.25, 0.5, 0.75, 1, 0.875, 0.75, 0.625, 0.5]
    np.testing.assert_allclose([f[0, 0] for f in out], expected)
    assert len(list(iter_upsampled(frames, 1, "flow"))) == 3
    assert len(list(iter_upsampled(frames[:1], 5, "flow"))) == 1
    assert list(iter_upsampled([], 5, "flow")) == []
    with pytest.raises(ValueError, match="upsample"):
        iter_upsampled(frames, 0, "linear")  # checked at the call, not lazily
    with pytest.raises(ValueError, match="interpolation"):
        iter_upsampled(frames, 2, "cubic")


# --------------------------------------------------------------------------- conversion


def test_uniform_grey_rate_and_dat_round_trip(tmp_path: Path) -> None:
    src = write_video(tmp_path / "grey.avi", grey_frames(6, 16, 24, 128))
    info = convert_video(src, tmp_path / "grey.dat", upsample=10, progress=False)
    n = (6 - 1) * 10 + 1
    assert info["source_frames"] == 6 and info["spike_frames"] == n
    assert (info["height"], info["width"]) == (16, 24)
    assert info["source_fps"] == pytest.approx(25.0)
    assert info["path"] == str(tmp_path / "grey.dat")
    spikes = read_dat(tmp_path / "grey.dat", 16, 24)
    assert spikes.shape == (n, 16, 24) and spikes.dtype == bool
    expected = (128 / 255) / 5.0
    assert spikes.mean() == pytest.approx(expected, rel=0.04)
    assert info["mean_firing_rate"] == pytest.approx(spikes.mean())


def test_moving_square_spike_centroid_moves_right(tmp_path: Path) -> None:
    src = write_video(tmp_path / "square.avi", moving_square(6))
    upsample = 10
    info = convert_video(src, tmp_path / "square.dat", upsample=upsample, progress=False)
    spikes = read_dat(tmp_path / "square.dat", info["height"], info["width"])
    assert spikes.shape == ((6 - 1) * upsample + 1, 32, 64)
    xs = np.arange(64)
    centroids = []
    for k in range(5):  # one window per source interval
        counts = spikes[k * upsample : (k + 1) * upsample].sum(axis=(0, 1))
        centroids.append(float((counts * xs).sum() / counts.sum()))
    assert np.all(np.diff(centroids) > 2.0), centroids  # ~4 px per source frame


def test_chunking_does_not_change_output(tmp_path: Path) -> None:
    src = write_video(tmp_path / "square.avi", moving_square(4))
    a = convert_video(src, tmp_path / "a.dat", upsample=5, chunk_frames=256, progress=False)
    b = convert_video(src, tmp_path / "b.dat", upsample=5, chunk_frames=3, progress=True)
    assert a["spike_frames"] == b["spike_frames"] == 16
    assert (tmp_path / "a.dat").read_bytes() == (tmp_path / "b.dat").read_bytes()


def test_size_crop_linear_and_max_frames(tmp_path: Path) -> None:
    src = write_video(tmp_path / "square.avi", moving_square(6))
    info = convert_video(
        src,
        tmp_path / "r.dat",
        upsample=3,
        size=(16, 16),
        crop="resize",
        interpolation="linear",
        max_frames=4,
        progress=False,
    )
    assert (info["source_frames"], info["spike_frames"]) == (4, 10)
    assert read_dat(tmp_path / "r.dat", 16, 16).shape == (10, 16, 16)
    frames = list(frames_from_video(src, size=(8, 24), mode="center", max_frames=2))
    assert len(frames) == 2 and frames[0].shape == (8, 24) and frames[0].dtype == np.float32
    assert 0.0 <= frames[0].min() and frames[0].max() <= 1.0


def test_mp4v_mp4(tmp_path: Path) -> None:
    src = write_video(tmp_path / "grey.mp4", grey_frames(3, 16, 16, 200), fourcc="mp4v")
    info = convert_video(src, tmp_path / "grey.dat", upsample=2, progress=False)
    assert info["spike_frames"] == 5
    assert read_dat(tmp_path / "grey.dat", 16, 16).shape == (5, 16, 16)


# --------------------------------------------------------------------------- errors


def test_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing.avi"
    with pytest.raises(FileNotFoundError, match=r"missing\.avi"):
        convert_video(missing, tmp_path / "x.dat", progress=False)
    with pytest.raises(FileNotFoundError, match=r"missing\.avi"):
        frames_from_video(missing)
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"this is not a video" * 10)
    with pytest.raises(ValueError, match=r"junk\.avi"):
        convert_video(junk, tmp_path / "x.dat", progress=False)

    src = write_video(tmp_path / "grey.avi", grey_frames(2, 16, 16, 100))
    with pytest.raises(ValueError, match="upsample"):
        convert_video(src, tmp_path / "x.dat", upsample=0, progress=False)
    with pytest.raises(ValueError, match="multiple of 8"):
        convert_video(src, tmp_path / "x.dat", size=(3, 5), progress=False)
    with pytest.raises(ValueError, match="multiple of 8"):  # checked before opening the file
        convert_video(missing, tmp_path / "x.dat", size=(3, 5), progress=False)
    with pytest.raises(ValueError, match="crop mode"):
        convert_video(src, tmp_path / "x.dat", crop="stretch", progress=False)
    with pytest.raises(ValueError, match="interpolation"):
        convert_video(src, tmp_path / "x.dat", interpolation="cubic", progress=False)
    with pytest.raises(ValueError, match="resize"):  # source smaller than the centre crop
        convert_video(src, tmp_path / "x.dat", size=(32, 32), progress=False)
    odd = write_video(tmp_path / "odd.avi", grey_frames(2, 18, 14, 100))  # 252 pixels
    with pytest.raises(ValueError, match="multiple of 8"):
        convert_video(odd, tmp_path / "x.dat", progress=False)
    assert not (tmp_path / "x.dat").exists()
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


def test_video_without_frames(tmp_path: Path) -> None:
    path = tmp_path / "empty.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (16, 16))
    writer.release()
    if not path.exists():
        path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.avi"):
        convert_video(path, tmp_path / "e.dat", progress=False)
    assert not (tmp_path / "e.dat").exists()
