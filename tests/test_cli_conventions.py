"""Commands that used to end in tracebacks (issue 15): training without accelerate, push failures."""

from __future__ import annotations

import sys

from conftest import tiny_model

from glean_hub.cli import main


def test_train_without_accelerate_is_one_line_and_makes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "accelerate", None)  # `import accelerate` now fails as if not installed
    (tmp_path / "data").mkdir()
    for argv, out in ((["train-bank", "--data", str(tmp_path / "data"), "--resolution", "16", "--out", str(tmp_path / "bank")],
                       tmp_path / "bank"),
                      (["train", "--bank", str(tmp_path / "b"), "--data", str(tmp_path / "data"), "--scale", "8",
                        "--out", str(tmp_path / "glean")], tmp_path / "glean")):
        assert main(argv) != 0
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and 'pip install "glean-hub[train]"' in err and "Traceback" not in err
        assert not out.exists()  # nothing half-made


def test_push_failures_are_one_line(tmp_path, hub_server, capsys):
    tiny_model(category="faces").save_pretrained(tmp_path / "m", embed_bank=True)
    hub_server.stop()
    assert main(["push", str(tmp_path / "m"), "me/faces"]) != 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "could not reach the Hub" in err and "Traceback" not in err
