"""``dialogtune serve`` argument handling (the server itself is tested in test_serve_live)."""

from __future__ import annotations

import pytest

from dialogtune.cli import main
from dialogtune.serve.runtime import is_loopback


def test_serve_needs_a_model(capsys):
    assert main(["serve"]) == 2
    assert "nothing to serve" in capsys.readouterr().err


def test_serve_rejects_bad_threshold_and_missing_run(tmp_path, capsys):
    assert main(["serve", "--intent", str(tmp_path), "--oos-threshold", "1.5"]) == 2
    assert "expected a probability" in capsys.readouterr().err
    assert main(["serve", "--intent", str(tmp_path / "none")]) == 2
    assert "not a dialogtune run" in capsys.readouterr().err


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("localhost", True),
                                            ("::1", True), ("0.0.0.0", False),
                                            ("10.1.2.3", False), ("example.org", False)])
def test_loopback_detection(host, loopback):
    assert is_loopback(host) is loopback


def test_unsafe_model_sources_are_refused(tmp_path, intent_run):
    from dialogtune.errors import DialogtuneError
    from dialogtune.serve.runtime import check_safe_source

    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(DialogtuneError, match="only safetensors"):
        check_safe_source(pickled)
    remote = tmp_path / "remote_run"
    remote.mkdir()
    text = (intent_run / "config.yaml").read_text()
    (remote / "config.yaml").write_text(text.replace("trust_remote_code: false",
                                                     "trust_remote_code: true"))
    with pytest.raises(DialogtuneError, match="trust_remote_code"):
        check_safe_source(remote)
    check_safe_source(intent_run)  # a normal run and its base folder pass
    check_safe_source("smollm2")
