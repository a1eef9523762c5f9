"""The data CLI end to end on small inputs."""

import numpy as np
from PIL import Image

from fsve.data.__main__ import main
from fsve.data.camera import simulate
from fsve.data.dat import write_dat


def test_show_writes_tfi_png_of_frame(tmp_path, capsys):
    scene = np.linspace(0.2, 0.8, 16 * 24).reshape(16, 24)
    write_dat(tmp_path / "s.dat", simulate(np.broadcast_to(scene, (120, 16, 24)), seed=0))
    assert (
        main(
            [
                "show",
                str(tmp_path / "s.dat"),
                "--size",
                "16x24",
                "-t",
                "60",
                "--out",
                str(tmp_path / "f.png"),
            ]
        )
        == 0
    )
    image = np.asarray(Image.open(tmp_path / "f.png"))
    assert image.shape == (16, 24) and image.dtype == np.uint8
    # brighter on the right, and on average the scene's intensity x 255 within 5%
    assert image[:, -4:].mean() > image[:, :4].mean()
    assert abs(image.mean() / (scene.mean() * 255) - 1) < 0.05
    assert main(["info", str(tmp_path / "s.dat"), "--size", "16x24"]) == 0
    assert "120 frames of 16x24" in capsys.readouterr().out


def test_cli_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "bad.dat").write_bytes(b"\x00" * 13)
    assert main(["info", str(tmp_path / "bad.dat"), "--size", "4x4"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.dat" in err and "13 bytes" in err
    assert main(["show", str(tmp_path / "bad.dat"), "--size", "4x4"]) == 2
    assert main(["info", str(tmp_path / "none.dat"), "--size", "4x4"]) == 2
    assert "none.dat" in capsys.readouterr().err


def test_convert_video_cli(tmp_path, capsys):
    cv2 = __import__("pytest").importorskip("cv2")
    path = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 25, (48, 32))
    for k in range(6):
        frame = np.full((32, 48, 3), 60, dtype=np.uint8)
        frame[10:20, 4 + 6 * k : 14 + 6 * k] = 230
        writer.write(frame)
    writer.release()
    out = tmp_path / "clip.dat"
    assert main(["convert", path, str(out), "--upsample", "4", "--size", "16x24", "--quiet"]) == 0
    assert "21 spike frames of 16x24" in capsys.readouterr().out  # (6 - 1) * 4 + 1
    assert out.stat().st_size == 21 * 16 * 24 // 8
