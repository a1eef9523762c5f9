"""fsve.cli: one-line errors with exit code 2, the shared dataset check, the text table."""

from __future__ import annotations

import argparse

import pytest

from fsve.cli import (
    EXIT_USAGE,
    Parser,
    UsageError,
    positive_int,
    require_dataset,
    run_command,
    text_table,
)


def test_parser_error_is_one_line_exit_2(capsys):
    parser = Parser(prog="python -m x")
    parser.add_argument("--n", type=positive_int)
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["--n", "0"])
    assert exc.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert err == "python -m x: error: argument --n: must be >= 1, got 0\n"


def test_positive_int_rejects_text():
    with pytest.raises(argparse.ArgumentTypeError, match="expected an integer, got 'a'"):
        positive_int("a")
    assert positive_int("3") == 3


def test_run_command_prints_the_error_and_returns_2(capsys):
    def bad() -> int:
        raise UsageError("data/x: no dataset")

    assert run_command(bad, "python -m y: error") == EXIT_USAGE
    assert capsys.readouterr().err == "python -m y: error: data/x: no dataset\n"
    assert run_command(lambda: 0, "p") == 0


def test_run_command_lets_other_errors_through():
    def boom() -> int:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        run_command(boom, "p")


def test_require_dataset_names_the_folder_and_the_fix(tmp_path):
    with pytest.raises(UsageError, match=rf"{tmp_path}: no dataset here .*fsve.data synth"):
        require_dataset(tmp_path)
    (tmp_path / "manifest.csv").write_text("")
    require_dataset(tmp_path)


def test_text_table_alignments():
    rows = [{"name": "conv1", "cores": 12, "note": ""}, {"name": "fc", "cores": 3, "note": "x"}]
    assert text_table(rows, align="right") == (
        " name  cores  note\n-----  -----  ----\nconv1     12\n   fc      3     x\n"
    )
    assert text_table(rows, indent="  ") == (
        "  name   cores  note\n  -----  -----  ----\n  conv1  12\n  fc     3      x\n"
    )
    assert text_table(rows, cols=["cores", "name"], align="auto") == (
        "cores  name\n-----  -----\n   12  conv1\n    3  fc\n"
    )
    assert text_table([], indent="  ") == "  (none)\n"
