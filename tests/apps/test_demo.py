"""``python -m apps.demo``: the dataset step end to end on a tiny dataset (``--data-only``)."""

import json

import numpy as np
from PIL import Image

from apps.demo import main as demo
from fsve.data.__main__ import main


def test_synth_info_and_demo(tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "demo"
    assert (
        demo(
            [
                "--data",
                str(data),
                "--out",
                str(out),
                "--data-only",
                "--train",
                "2",
                "--val",
                "1",
                "--test",
                "1",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["samples"] == {
        "test": len(summary["classes"]),
        "train": 2 * len(summary["classes"]),
        "val": len(summary["classes"]),
    }
    sheet = np.asarray(Image.open(out / "tfi.png"))
    assert sheet.ndim == 2 and sheet.std() > 0
    assert (out / "summary.md").read_text().startswith("# fsve demo")
    assert main(["info", str(data)]) == 0
    assert f"{4 * len(summary['classes'])} samples" in capsys.readouterr().out
