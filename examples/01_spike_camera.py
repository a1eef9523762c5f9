"""Example 1: the spike camera, SpikeCV ``.dat`` files and images from spikes.

Teaches, on one clip of the built-in synthetic dataset:

1. rendering a sample's intensity frames (:func:`fsve.data.synth.render_sample`);
2. the spike camera (paper Eq. 1, :func:`fsve.data.camera.simulate`): intensity becomes spike
   rate, ``I / threshold`` spikes per pixel and frame; streaming a long clip in chunks
   (:func:`fsve.data.camera.simulate_chunks`) gives the same spikes;
3. writing and reading SpikeCV ``.dat`` files (:mod:`fsve.data.dat`): whole-file and windowed
   reads, a streaming :class:`~fsve.data.dat.DatWriter`;
4. TFI and TFP reconstructions (:mod:`fsve.data.recon`) against the true intensity, saved as
   PNG.

Run: ``.venv/bin/python examples/01_spike_camera.py`` (a 240x320 clip of 250 frames, the
paper's resolution: about 1 s on one core) or ``--quick`` (64x64, 120 frames: under 1 s).
Writes ``clip.dat``, ``recon.png`` (true intensity | TFI | TFP) and ``summary.json`` to
``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from fsve.data.__main__ import save_png
from fsve.data.camera import simulate, simulate_chunks
from fsve.data.dat import DatWriter, count_frames, read_dat, write_dat
from fsve.data.recon import tfi, tfi_intensity, tfp
from fsve.data.synth import CLASSES, SynthConfig, render_sample

THRESHOLD = 5.0  # camera threshold theta (the paper's converter, Appendix A.8.2)
HALF_WINDOW = 20  # frames searched / averaged each side of t by TFI / TFP


def render(label: int, seed: int, quick: bool) -> tuple[np.ndarray, str]:
    """Step 1. Intensity frames [N, H, W] in [0, 1] of one synthetic sample and its caption."""
    # an object moving over a static background (the classes differ only in how it moves)
    h, w, n = (64, 64, 120) if quick else (240, 320, 250)
    config = SynthConfig(height=h, width=w, frames=n, seed=seed, threshold=THRESHOLD)
    frames, caption = render_sample(label, np.random.default_rng(seed), config)
    print(f"class {CLASSES[label].name!r}: {caption!r}")
    print(f"intensity frames {frames.shape} {frames.dtype}, mean {frames.mean():.3f}")
    return frames, caption


def camera(frames: np.ndarray, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Step 2. The spike camera, in one shot and streamed in chunks; the spikes [N, H, W]."""
    # Every pixel integrates its intensity and fires when the charge reaches the threshold
    # (reset by subtraction). A pixel of intensity I fires I / threshold times per frame on
    # average, so the mean firing rate is mean(I) / threshold.
    spikes = simulate(frames, threshold=THRESHOLD, seed=seed)  # [N, H, W] bool
    rate = float(spikes.mean())
    expected_rate = float(frames.mean()) / THRESHOLD
    print(f"spikes {spikes.shape}: rate {rate:.4f} spikes/pixel/frame")
    print(f"  mean(I)/theta predicts {expected_rate:.4f} (the random initial charge: the rest)")

    # The same camera streamed over chunks of frames: the charge carries from chunk to chunk,
    # so a long video never has to be in memory at once. Same seed -> the same spikes.
    chunks = (frames[s : s + 32] for s in range(0, len(frames), 32))
    streamed = np.concatenate(list(simulate_chunks(chunks, threshold=THRESHOLD, seed=seed)))
    stream_equal = bool(np.array_equal(streamed, spikes))
    print(f"chunked camera equals the one-shot camera: {stream_equal}")
    facts = {"firing_rate": rate, "expected_rate": expected_rate, "stream_equal": stream_equal}
    return spikes, facts


def dat_files(spikes: np.ndarray, out: Path, t: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Step 3. SpikeCV ``.dat`` written, read whole and around frame ``t``, and streamed."""
    # No header, H*W/8 bytes per frame, 8 pixels per byte (LSB first), rows upside down. The
    # frame size is not in the file: the reader must know it.
    n, h, w = spikes.shape
    dat = out / "clip.dat"
    write_dat(dat, spikes)
    size = dat.stat().st_size
    print(f"wrote {dat}: {size} bytes = {n} frames x {h * w // 8} bytes")
    back = read_dat(dat, h, w)
    roundtrip_equal = bool(np.array_equal(back, spikes))
    print(f"read back {back.shape}: equal to what was written: {roundtrip_equal}")
    # a windowed read seeks to the window and reads only its bytes
    window = read_dat(dat, h, w, t - HALF_WINDOW, t + HALF_WINDOW + 1)
    window_equal = bool(np.array_equal(window, spikes[t - HALF_WINDOW : t + HALF_WINDOW + 1]))
    print(f"frames [{t - HALF_WINDOW}, {t + HALF_WINDOW + 1}) read alone: equal: {window_equal}")
    # a DatWriter appends chunks and moves the file into place when the block ends
    streamed_dat = out / "clip_streamed.dat"
    with DatWriter(streamed_dat, h, w) as writer:
        for s in range(0, n, 32):
            writer.write(spikes[s : s + 32])
    writer_equal = streamed_dat.read_bytes() == dat.read_bytes()
    print(f"DatWriter wrote {count_frames(streamed_dat, h, w)} frames, same bytes: {writer_equal}")
    streamed_dat.unlink()
    facts = {"dat_bytes": size, "roundtrip_equal": roundtrip_equal}
    return back, {**facts, "window_equal": window_equal, "writer_equal": writer_equal}


def reconstruct(spikes: np.ndarray, frames: np.ndarray, t: int, out: Path) -> dict[str, float]:
    """Step 4. TFI and TFP at frame ``t`` against the true intensity; ``recon.png``."""
    # Images in intensity units x 255 (threshold/alpha calibrates them; threshold=1 gives
    # SpikeCV's raw 255/interval and 255*rate):
    # TFI: threshold / (interval between the spikes around t); TFP: threshold x spike rate.
    image_tfi = tfi(spikes, t, half_window=HALF_WINDOW, threshold=THRESHOLD)  # uint8 [H, W]
    image_tfp = tfp(spikes, t, half_window=HALF_WINDOW, threshold=THRESHOLD)  # uint8 [H, W]
    truth = np.clip(np.rint(frames[t] * 255.0), 0, 255).astype(np.uint8)
    mae_tfi = float(np.abs(tfi_intensity(spikes, t, HALF_WINDOW, THRESHOLD) - frames[t]).mean())
    mae_tfp = float(np.abs(image_tfp / 255.0 - frames[t]).mean())
    print(f"frame {t}: mean |image - true intensity|: TFI {mae_tfi:.3f}, TFP {mae_tfp:.3f}")
    gap = np.full((truth.shape[0], 2), 255, np.uint8)
    png = out / "recon.png"
    save_png(png, np.hstack([truth, gap, image_tfi, gap, image_tfp]))
    print(f"wrote {png} (true intensity | TFI | TFP)")
    return {"mae_tfi": mae_tfi, "mae_tfp": mae_tfp}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/examples/01_spike_camera"))
    parser.add_argument("--quick", action="store_true", help="64x64, 120 frames (tests)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label", type=int, default=0, help=f"class 0..{len(CLASSES) - 1}")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)

    frames, caption = render(args.label, args.seed, args.quick)
    spikes, camera_facts = camera(frames, args.seed)
    t = len(frames) // 2
    back, dat_facts = dat_files(spikes, args.out, t)
    errors = reconstruct(back, frames, t, args.out)

    seconds = time.perf_counter() - started
    n, h, w = frames.shape
    summary = {
        "height": h,
        "width": w,
        "frames": n,
        "threshold": THRESHOLD,
        "label": args.label,
        "caption": caption,
        "t": t,
        "half_window": HALF_WINDOW,
        "firing_rate": camera_facts["firing_rate"],
        "expected_rate": camera_facts["expected_rate"],
        "dat_bytes": dat_facts["dat_bytes"],
        "roundtrip_equal": dat_facts["roundtrip_equal"],
        "window_equal": dat_facts["window_equal"],
        "stream_equal": camera_facts["stream_equal"],
        "writer_equal": dat_facts["writer_equal"],
        **errors,
        "seconds": round(seconds, 2),
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"done in {seconds:.1f} s; summary in {args.out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
