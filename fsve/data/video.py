"""Real video (mp4/avi) -> SpikeCV ``.dat`` spike stream, as SPKLIP Appendix A.8 does.

Pipeline, one source frame at a time:

1. **Decode** with OpenCV (``cv2.VideoCapture``; whatever its FFmpeg build reads).
2. **Grayscale**: luminance ``cv2.cvtColor(BGR2GRAY)`` of the 8-bit frame, divided by 255. The
   code values are used as intensities as they are (no gamma linearisation), as SpikeCV does.
3. **Fit** to the output size (:func:`fit_frame`): ``"center"`` cuts the centre ``H x W`` window
   at native resolution (the source must be at least that large); ``"resize"`` first cuts the
   largest centred window of the target aspect ratio, then rescales it to ``H x W`` (area
   averaging when shrinking, bilinear when enlarging), so the picture is never distorted.
4. **Interpolate** to ``upsample`` times the frame rate (:func:`iter_upsampled`). Between source
   frames ``k`` and ``k+1`` come ``upsample`` frames at times ``k + j/upsample``,
   ``j = 0..upsample-1`` (``j = 0`` is frame ``k`` itself); the last source frame is emitted once,
   so ``N`` source frames give ``(N - 1) * upsample + 1`` output frames.
5. **Spike camera**: the integrate-and-fire pixel of :mod:`fsve.data.camera` (threshold 5.0 by
   default), one read-out per interpolated frame, written with :class:`fsve.data.dat.DatWriter`.

Interpolation. The paper raises the frame rate with a learned interpolator; none is available
here (nothing is downloaded), so two classical methods stand in:

* ``"linear"``: cross-fade ``(1 - t) a + t b``. Exact for static scenes and for slow intensity
  changes; a moving edge instead fades out at its old place while fading in at the new one (two
  half-bright copies), which makes the spike stream show a blinking double edge instead of
  motion for displacements larger than the edge width.
* ``"flow"`` (default): motion-compensated. Dense Farnebäck optical flow
  (``cv2.calcOpticalFlowFarneback``) is computed both ways between the two grayscale frames,
  ``F01`` and ``F10``, coarse to fine over a Gaussian pyramid of up to 6 levels built here
  (OpenCV's own pyramid stops at levels smaller than 32 pixels, which would limit a 240x320
  frame to about 16 pixels of motion; this one follows a uniform translation of 64 pixels at
  240x320 and proportionally less on smaller frames). The flow from the intermediate time
  ``t`` back to each frame is approximated as in Super SloMo (Jiang et al., CVPR 2018, Eq. 4)::

      F_t0 = -(1 - t) t F01 + t^2 F10        F_t1 = (1 - t)^2 F01 - t (1 - t) F10

  (for a uniform translation ``d`` these are exactly ``-t d`` and ``(1 - t) d``). Both frames are
  backward-warped with ``cv2.remap`` (bilinear, replicated borders) and blended with weights
  ``1 - t`` and ``t``. Limits: motion is assumed linear between the two frames; there are no
  visibility masks, so occluded and disoccluded regions, thin structures and motion-blurred
  areas get ghosts (half-weight copies) much like the linear method; flat regions have no
  reliable flow (harmless there, since warping a flat region changes nothing); displacements
  beyond the pyramid's range, scene cuts, flicker and brightness changes break the
  brightness-constancy assumption; the coarse levels can lock onto a wrong match in repetitive
  texture. It is a plausible stand-in for the learned interpolator, not a reproduction of it:
  spike streams from the two will differ in detail.

Order of operations. The paper interpolates the colour frames and then converts to grayscale;
here frames are converted to grayscale and fitted to the output size first, and interpolated
after. For the linear method this is the same up to rounding (luminance and resizing are
linear); for the flow method it means flow is estimated on luminance only (two colours of equal
luminance look alike) but costs only two coarse-to-fine Farnebäck estimates per source frame
pair at the output resolution.

Memory. Frames stream: only the previous source frame, its flows and one chunk of
``chunk_frames`` interpolated frames (``chunk_frames * H * W * 4`` bytes, e.g. 79 MB for 256
frames of 240x320, plus the same chunk as bool spikes) are held at once, whatever the video
length. Lower ``chunk_frames`` for large frame sizes.

OpenCV is an optional dependency (``pip install 'fsve[video]'``); it is imported only inside
the functions that need it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from fsve.data.camera import DEFAULT_THRESHOLD, simulate_chunks
from fsve.data.dat import DatWriter, frame_bytes

PathLike = str | os.PathLike

FIT_MODES = ("center", "resize")
INTERPOLATIONS = ("flow", "linear")

# Farnebäck parameters per pyramid level (window, iterations, polynomial expansion). The
# pyramid is built here (see _flow) because OpenCV's own stops at levels below 32 pixels,
# which leaves a 240x320 frame only 3 levels and about 16 pixels of motion range.
_FARNEBACK = {"winsize": 15, "iterations": 3, "poly_n": 5, "poly_sigma": 1.2}
_PYR_LEVELS = 6  # at most; each halves the frame
_PYR_MIN_SIDE = 8  # coarsest level is at least this many pixels on its short side


def _cv2() -> Any:
    """Import OpenCV or fail with an install hint."""
    try:
        import cv2
    except ImportError as err:
        raise ImportError(
            "video conversion needs OpenCV, which is not installed: pip install 'fsve[video]'"
        ) from err
    return cv2


# --------------------------------------------------------------------------- pure helpers


def to_gray_unit(frame_bgr: np.ndarray) -> np.ndarray:
    """BGR(A) or gray frame (uint8, uint16 or float in [0, 1]) -> luminance float32 ``[H, W]``.

    Colour goes through ``cv2.cvtColor(BGR2GRAY)`` (ITU-R BT.601 weights); integer frames are
    divided by their type's maximum, float frames are clipped to [0, 1].
    """
    frame = np.asarray(frame_bgr)
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim == 3:
        if frame.shape[2] not in (3, 4):
            raise ValueError(f"expected a BGR or BGRA frame, got shape {frame.shape}")
        cv2 = _cv2()
        if frame.dtype not in (np.uint8, np.uint16, np.float32):
            frame = frame.astype(np.float32)
        code = cv2.COLOR_BGR2GRAY if frame.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
        frame = cv2.cvtColor(np.ascontiguousarray(frame), code)
    elif frame.ndim != 2:
        raise ValueError(f"expected a [H, W] or [H, W, C] frame, got shape {frame.shape}")
    if frame.dtype == np.uint8:
        return frame.astype(np.float32) * np.float32(1 / 255)
    if frame.dtype == np.uint16:
        return frame.astype(np.float32) * np.float32(1 / 65535)
    if np.issubdtype(frame.dtype, np.integer) or frame.dtype == bool:
        raise ValueError(f"unsupported frame dtype {frame.dtype}")
    return np.clip(frame.astype(np.float32), 0.0, 1.0)


def _check_size(size: tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if len(size) != 2 or any(int(s) != s or s <= 0 for s in size):
        raise ValueError(f"size must be (H, W) with positive integers, got {size!r}")
    return int(size[0]), int(size[1])


def _check_mode(mode: str) -> None:
    if mode not in FIT_MODES:
        raise ValueError(f"crop mode must be one of {FIT_MODES}, got {mode!r}")


def fit_frame(gray: np.ndarray, size: tuple[int, int] | None, mode: str = "center") -> np.ndarray:
    """Fit a ``[h, w]`` frame to ``size = (H, W)``; ``None`` keeps it as it is.

    ``"center"`` cuts the centred ``H x W`` window (raises if the frame is smaller);
    ``"resize"`` cuts the largest centred window with aspect ratio ``W / H`` and rescales it to
    ``H x W`` (area averaging to shrink, bilinear to enlarge), keeping the aspect ratio.
    """
    _check_mode(mode)
    size = _check_size(size)
    gray = np.asarray(gray)
    if gray.ndim != 2:
        raise ValueError(f"expected a [H, W] frame, got shape {gray.shape}")
    if size is None:
        return gray
    out_h, out_w = size
    h, w = gray.shape
    if mode == "center":
        if h < out_h or w < out_w:
            raise ValueError(
                f"cannot centre-crop a {h}x{w} frame to {out_h}x{out_w}; use crop='resize'"
                " to rescale it"
            )
        top, left = (h - out_h) // 2, (w - out_w) // 2
        return gray[top : top + out_h, left : left + out_w]
    # resize: crop to the target aspect ratio first, then rescale
    if w * out_h > h * out_w:  # source is wider than the target
        crop_h, crop_w = h, max(1, round(h * out_w / out_h))
    else:
        crop_h, crop_w = max(1, round(w * out_h / out_w)), w
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    window = gray[top : top + crop_h, left : left + crop_w]
    if (crop_h, crop_w) == (out_h, out_w):
        return window
    cv2 = _cv2()
    shrink = crop_h * crop_w > out_h * out_w
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    src = window if window.dtype in (np.uint8, np.float32) else window.astype(np.float32)
    return cv2.resize(np.ascontiguousarray(src), (out_w, out_h), interpolation=interp)


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"need two [H, W] frames of the same shape, got {a.shape} and {b.shape}")
    return a, b


def _check_count(n: int) -> None:
    if int(n) != n or n < 1:
        raise ValueError(f"number of interpolated frames must be an integer >= 1, got {n!r}")


def _iter_linear(a: np.ndarray, b: np.ndarray, n: int) -> Iterator[np.ndarray]:
    yield a.copy()
    for j in range(1, n):
        t = np.float32(j / n)
        yield (np.float32(1) - t) * a + t * b


def _pyramid(img: np.ndarray) -> list[np.ndarray]:
    """Gaussian pyramid of ``img * 255``, finest first (Farnebäck's constants suit 0..255)."""
    cv2 = _cv2()
    levels = [np.ascontiguousarray(img * np.float32(255))]
    while len(levels) < _PYR_LEVELS and min(levels[-1].shape) // 2 >= _PYR_MIN_SIDE:
        levels.append(cv2.pyrDown(levels[-1]))
    return levels


def _flow(pyr_from: list[np.ndarray], pyr_to: list[np.ndarray]) -> np.ndarray:
    """Dense Farnebäck flow ``[H, W, 2]`` (x, y) from one frame to the other, coarse to fine.

    ``pyr_to(x + flow(x)) ~ pyr_from(x)`` at the finest level.
    """
    cv2 = _cv2()
    flow = cv2.calcOpticalFlowFarneback(
        pyr_from[-1], pyr_to[-1], None, pyr_scale=0.5, levels=1, flags=0, **_FARNEBACK
    )
    use_initial = cv2.OPTFLOW_USE_INITIAL_FLOW
    for src, dst in zip(reversed(pyr_from[:-1]), reversed(pyr_to[:-1]), strict=True):
        h, w = src.shape
        ch, cw = flow.shape[:2]  # upsample the coarser estimate as the initial guess
        flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
        flow[..., 0] *= np.float32(w / cw)
        flow[..., 1] *= np.float32(h / ch)
        flow = cv2.calcOpticalFlowFarneback(
            src, dst, flow, pyr_scale=0.5, levels=1, flags=use_initial, **_FARNEBACK
        )
    return flow


def _iter_flow(a: np.ndarray, b: np.ndarray, n: int) -> Iterator[np.ndarray]:
    yield a.copy()
    if n == 1:
        return
    cv2 = _cv2()
    pyr_a, pyr_b = _pyramid(a), _pyramid(b)
    f01, f10 = _flow(pyr_a, pyr_b), _flow(pyr_b, pyr_a)
    del pyr_a, pyr_b
    h, w = a.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))

    def warp(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
        return cv2.remap(
            img,
            gx + flow[..., 0],
            gy + flow[..., 1],
            interpolation=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )

    for j in range(1, n):
        t = j / n
        f_t0 = np.float32(-(1 - t) * t) * f01 + np.float32(t * t) * f10
        f_t1 = np.float32((1 - t) ** 2) * f01 - np.float32(t * (1 - t)) * f10
        yield np.float32(1 - t) * warp(a, f_t0) + np.float32(t) * warp(b, f_t1)


def interpolate_linear(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Cross-fade: frames at ``t = j/n``, ``j = 0..n-1``, float32 ``[n, H, W]`` (``[0] == a``)."""
    a, b = _pair(a, b)
    _check_count(n)
    return np.stack(list(_iter_linear(a, b, n)))


def interpolate_flow(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Motion-compensated frames at ``t = j/n``, ``j = 0..n-1``, float32 ``[n, H, W]``.

    Farnebäck flow both ways, Super SloMo intermediate flows, ``cv2.remap`` of both frames,
    blend ``(1 - t, t)``; see the module docstring for the method and its limits.
    """
    a, b = _pair(a, b)
    _check_count(n)
    return np.stack(list(_iter_flow(a, b, n)))


def iter_upsampled(
    frames_iter: Iterable[np.ndarray], upsample: int, method: str = "flow"
) -> Iterator[np.ndarray]:
    """Frames ``[H, W]`` -> ``upsample`` times as many float32 frames ``[H, W]``, lazily.

    Each source pair ``(k, k+1)`` yields frames at ``k + j/upsample``, ``j = 0..upsample-1``;
    the last source frame is yielded once: ``N`` frames in, ``(N-1)*upsample + 1`` out.
    Arguments are checked at the call, not at the first ``next``.
    """
    if int(upsample) != upsample or upsample < 1:
        raise ValueError(f"upsample must be an integer >= 1, got {upsample!r}")
    if method not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {method!r}")
    pair_frames = _iter_flow if method == "flow" else _iter_linear
    return _upsampled(frames_iter, int(upsample), pair_frames)


def _upsampled(
    frames_iter: Iterable[np.ndarray],
    upsample: int,
    pair_frames: Callable[[np.ndarray, np.ndarray, int], Iterator[np.ndarray]],
) -> Iterator[np.ndarray]:
    prev: np.ndarray | None = None
    for frame in frames_iter:
        cur = np.asarray(frame, dtype=np.float32)
        if prev is not None:
            prev, cur = _pair(prev, cur)
            if upsample == 1:
                yield prev
            else:
                yield from pair_frames(prev, cur, upsample)
        prev = cur
    if prev is not None:
        yield prev


# --------------------------------------------------------------------------- video reading


def _open_video(src: PathLike) -> tuple[Any, dict[str, float]]:
    """Open ``src`` with OpenCV; returns ``(capture, {fps, frame_count, height, width})``."""
    path = Path(src)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such video file")
    cv2 = _cv2()
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise ValueError(f"{path}: OpenCV cannot open this file as a video")
    meta = {
        "fps": float(cap.get(cv2.CAP_PROP_FPS) or 0.0),
        "frame_count": int(max(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0, 0)),
        "height": int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0),
        "width": int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0),
    }
    return cap, meta


def _read_frames(
    cap: Any,
    path: Path,
    size: tuple[int, int] | None,
    mode: str,
    max_frames: int | None,
) -> Iterator[np.ndarray]:
    """Decode, grayscale and fit frames; releases ``cap`` when done or closed."""
    try:
        count = 0
        while max_frames is None or count < max_frames:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            try:
                fitted = fit_frame(to_gray_unit(frame), size, mode)
            except ValueError as err:
                raise ValueError(f"{path}: {err}") from None
            yield fitted
            count += 1
        if count == 0:
            raise ValueError(f"{path}: the video has no frames that OpenCV can decode")
    finally:
        cap.release()


def _check_max_frames(max_frames: int | None) -> None:
    if max_frames is not None and (int(max_frames) != max_frames or max_frames < 1):
        raise ValueError(f"max_frames must be None or an integer >= 1, got {max_frames!r}")


def frames_from_video(
    src: PathLike,
    size: tuple[int, int] | None = None,
    mode: str = "center",
    max_frames: int | None = None,
) -> Iterator[np.ndarray]:
    """Grayscale float32 frames ``[H, W]`` in [0, 1] of a video file, one at a time.

    ``size = (H, W)`` and ``mode`` as in :func:`fit_frame`; ``max_frames`` limits the source
    frames read. The file is opened at the call (``FileNotFoundError`` if missing,
    ``ValueError`` if OpenCV cannot open it); a video without decodable frames raises
    ``ValueError`` when iterated.
    """
    _check_mode(mode)
    size = _check_size(size)
    _check_max_frames(max_frames)
    cap, _ = _open_video(src)
    return _read_frames(cap, Path(src), size, mode, max_frames)


# --------------------------------------------------------------------------- conversion


def _chunked(
    frames: Iterable[np.ndarray], chunk_frames: int, shape: tuple[int, int]
) -> Iterator[np.ndarray]:
    """Group ``[H, W]`` frames into ``[n, H, W]`` chunks.

    One buffer is reused: the consumer must be done with a chunk before asking for the next
    (``simulate_chunks`` is), which keeps a single chunk in memory.
    """
    buf = np.empty((chunk_frames, *shape), dtype=np.float32)
    n = 0
    for frame in frames:
        buf[n] = frame
        n += 1
        if n == chunk_frames:
            yield buf
            n = 0
    if n:
        yield buf[:n]


def convert_video(
    src: PathLike,
    dst: PathLike,
    upsample: int = 10,
    size: tuple[int, int] | None = None,
    crop: str = "center",
    interpolation: str = "flow",
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = 1.0,
    seed: int | None = 0,
    dark_rate: float = 0.0,
    max_frames: int | None = None,
    chunk_frames: int = 256,
    progress: bool = True,
) -> dict[str, Any]:
    """Convert a video file to a SpikeCV ``.dat`` spike stream; returns a summary dict.

    ``upsample``: output frames per source frame (the paper uses 10 or 50). ``size = (H, W)``
    with ``crop = "center"`` (cut, no scaling) or ``"resize"`` (aspect-preserving centre crop,
    then rescale); ``None`` keeps the native size. ``H*W`` must be a multiple of 8.
    ``interpolation``: ``"flow"`` (motion-compensated) or ``"linear"`` (cross-fade).
    ``threshold``, ``alpha``, ``seed``, ``dark_rate``: the camera (:mod:`fsve.data.camera`).
    ``max_frames``: read at most this many source frames. ``chunk_frames``: interpolated frames
    simulated and written per step (memory about ``5 * chunk_frames * H * W`` bytes, plus
    ``8 *`` that with ``dark_rate > 0``, for the camera's noise draw).

    The output appears atomically; on error no partial file is left, and an output that is the
    input itself or a directory is refused first (:func:`fsve.cli.check_output`). Returned keys:
    ``path``, ``source_fps``, ``source_frames``, ``spike_frames``, ``spike_fps``, ``height``,
    ``width``, ``upsample``, ``interpolation``, ``threshold``, ``mean_firing_rate`` (spikes per
    pixel per spike frame).
    """
    from fsve.cli import check_output

    size = _check_convert_args(upsample, size, crop, interpolation, max_frames, chunk_frames)
    src_path, dst_path = Path(src), check_output(dst, [src])
    cap, meta = _open_video(src_path)
    frames = _read_frames(cap, src_path, size, crop, max_frames)
    try:
        first = _first_frame(frames, meta, size, src_path)
        height, width = first.shape
        total = meta["frame_count"] or None
        if total is not None and max_frames is not None:
            total = min(total, max_frames)
        source_frames, spike_frames, spikes_total = _write_spikes(
            _chain_first(first, frames),
            dst_path,
            int(upsample),
            interpolation,
            int(chunk_frames),
            (threshold, alpha, seed, dark_rate),
            (total, src_path.name if progress else None),
        )
    finally:
        frames.close()  # releases the capture even on error

    fps = meta["fps"]
    return {
        "path": str(dst_path),
        "source_fps": fps,
        "source_frames": source_frames,
        "spike_frames": spike_frames,
        "spike_fps": fps * upsample,
        "height": height,
        "width": width,
        "upsample": int(upsample),
        "interpolation": interpolation,
        "threshold": float(threshold),
        "mean_firing_rate": spikes_total / (spike_frames * height * width),
    }


def _check_convert_args(
    upsample: int,
    size: tuple[int, int] | None,
    crop: str,
    interpolation: str,
    max_frames: int | None,
    chunk_frames: int,
) -> tuple[int, int] | None:
    """One-line errors for bad :func:`convert_video` arguments, before the video is opened."""
    if int(upsample) != upsample or upsample < 1:
        raise ValueError(f"upsample must be an integer >= 1, got {upsample!r}")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    if int(chunk_frames) != chunk_frames or chunk_frames < 1:
        raise ValueError(f"chunk_frames must be an integer >= 1, got {chunk_frames!r}")
    _check_mode(crop)
    size = _check_size(size)
    _check_max_frames(max_frames)
    if size is not None:
        frame_bytes(*size)  # H*W must be a multiple of 8: fail before touching the video
    return size


def _first_frame(
    frames: Iterator[np.ndarray], meta: dict[str, float], size: Any, src_path: Path
) -> np.ndarray:
    """The first frame; a one-line error if the frame size cannot be stored (H*W % 8)."""
    if size is None and meta["height"] > 0 and meta["width"] > 0:
        try:
            frame_bytes(meta["height"], meta["width"])
        except ValueError as err:
            raise ValueError(f"{src_path}: {err}; pass size=(H, W) to crop or resize") from None
    first = next(frames)  # raises ValueError for a video without frames
    try:
        frame_bytes(*first.shape)
    except ValueError as err:
        raise ValueError(f"{src_path}: {err}; pass size=(H, W) to crop or resize") from None
    return first


def _write_spikes(
    frames: Iterator[np.ndarray],
    dst_path: Path,
    upsample: int,
    interpolation: str,
    chunk_frames: int,
    camera: tuple[float, float, int | None, float],
    bar_spec: tuple[int | None, str | None],
) -> tuple[int, int, int]:
    """Upsample ``frames``, run the camera (``threshold, alpha, seed, dark_rate``) and write
    ``dst_path``; ``(source frames, spike frames, spikes)``. ``bar_spec``: the progress bar's
    total and label (label ``None``: no bar)."""
    from tqdm.auto import tqdm

    first = next(frames)
    height, width = first.shape
    total, label = bar_spec
    bar = tqdm(total=total, unit="frame", desc=label, disable=label is None)
    source_frames = 0

    def counted() -> Iterator[np.ndarray]:
        nonlocal source_frames
        for frame in _chain_first(first, frames):
            source_frames += 1
            bar.update(1)
            yield frame

    upsampled = iter_upsampled(counted(), upsample, interpolation)
    chunks = _chunked(upsampled, chunk_frames, (height, width))
    spikes_total = 0
    with bar, DatWriter(dst_path, height, width) as writer:
        for spikes in simulate_chunks(chunks, *camera):
            writer.write(spikes)
            spikes_total += int(np.count_nonzero(spikes))
        spike_frames = writer.frames_written
    return source_frames, spike_frames, spikes_total


def _chain_first(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest
