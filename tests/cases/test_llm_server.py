"""The LLM case's model server: its port (no model is loaded here)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from charter.cases import llm_server
from charter.cases._common import CaseError
from charter.cases.llm import LlmServer


@pytest.fixture
def taken() -> Iterator[int]:
    """A loopback port another process listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


class _NoModel:
    """Stands for ChatModel; loading one is what a taken port must not wait for."""

    load_seconds = 0.0

    def __init__(self, **_: object) -> None:
        self.loaded = True


def test_a_taken_port_fails_at_once_saying_so(
    taken: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def never(**_: object) -> None:
        raise AssertionError("the model was loaded before the port was bound")

    monkeypatch.setattr(llm_server, "ChatModel", never)
    assert llm_server.main(["--port", str(taken)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{taken}" in err and "--port 0" in err


def test_port_zero_binds_a_free_port_and_reports_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(llm_server, "ChatModel", _NoModel)
    monkeypatch.setattr(ThreadingHTTPServer, "serve_forever", lambda self, *a, **k: None)
    port_file = tmp_path / "port"
    assert llm_server.main(["--port", "0", "--port-file", str(port_file)]) == 0
    assert int(port_file.read_text()) > 0


def test_the_case_reports_why_the_server_did_not_start(taken: int, tmp_path: Path) -> None:
    with (
        pytest.raises(CaseError, match=f"cannot listen on 127.0.0.1:{taken}"),
        LlmServer(tmp_path, taken),
    ):
        pass  # pragma: no cover


def test_the_cases_pick_a_free_port_by_default() -> None:
    import inspect

    from charter.cases import llm, run

    assert inspect.signature(run).parameters["llm_port"].default == 0
    assert inspect.signature(llm.run).parameters["port"].default == 0
