"""CheckApp and its load-balancer backend: the choice, ``lvs_flush``, the control API."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address

import pytest

from pykeepalived.cli import daemon as daemon_cli
from pykeepalived.cli.getopt import usage
from pykeepalived.cli.report import ExitCode
from pykeepalived.config.build import load_text
from pykeepalived.config.model.root import Config
from pykeepalived.control.client import DEFAULT_SOCKET, get_json
from pykeepalived.daemon import DaemonOptions, control_socket_path
from pykeepalived.daemon.check_app import BackendUnavailable, CheckApp, CheckOptions
from pykeepalived.lb import choose
from pykeepalived.lb.backend import BackendError
from pykeepalived.lb.memory import MemoryBackend
from pykeepalived.lb.model import Destination, LbState, Service, ServiceKey
from pykeepalived.lb.plan import AddService, EditDest

VS = ServiceKey.for_address("tcp", IPv4Address("192.0.2.1"), 80)
OLD = ServiceKey.for_address("tcp", IPv4Address("198.51.100.1"), 80)


def config(*globals_lines: str) -> Config:
    text = (
        "global_defs {\n" + "".join(f"  {line}\n" for line in globals_lines) + "}\n"
        "virtual_server 192.0.2.1 80 {\n  protocol TCP\n  lvs_sched rr\n  lvs_method NAT\n"
        "  real_server 192.0.2.10 80 {\n    weight 2\n  }\n}\n"
    )
    result = load_text(text)
    assert result.config is not None, result.diagnostics
    return result.config


def before() -> LbState:
    """What the table holds when the daemon starts: our service at another weight, and
    one that is not in the configuration."""
    return LbState.build(
        [Service(VS, "rr"), Service(OLD, "wlc")],
        {VS: [Destination(IPv4Address("192.0.2.10"), 80, 5)], OLD: []},
    )


WANTED = LbState.build([Service(VS, "rr")], {VS: [Destination(IPv4Address("192.0.2.10"), 80, 2)]})


@pytest.fixture
def sock() -> Iterator[str]:
    directory = tempfile.mkdtemp(prefix="klb")
    try:
        yield os.path.join(directory, "checker.sock")
    finally:
        shutil.rmtree(directory)


async def run_until(
    app: CheckApp, check: Callable[[], bool], then: Callable[[], object] | None = None
) -> None:
    """Run ``app`` until ``check()``, call ``then`` in a thread (blocking clients), stop."""
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(app.run())
        async with asyncio.timeout(5):
            for _ in itertools.count():
                if check():
                    break
                await asyncio.sleep(0.01)
            if then is not None:
                await asyncio.to_thread(then)
        app.stop()
    assert task.result() == 0


class FlushingBackend(MemoryBackend):
    flushed = 0

    async def flush(self) -> None:
        self.flushed += 1
        self.replace(LbState())


@pytest.mark.parametrize("flush", [False, True])
def test_lvs_flush_empties_the_table_before_the_first_one(flush: bool) -> None:
    backend = MemoryBackend(before())
    app = CheckApp(config(*(["lvs_flush"] if flush else [])), CheckOptions(), backend)
    asyncio.run(run_until(app, lambda: backend.state == WANTED))
    added = [c for c in backend.applied if isinstance(c, AddService)]
    edited = [c for c in backend.applied if isinstance(c, EditDest)]
    if flush:  # everything went, ours came back
        assert [c.service.key for c in added] == [VS]
        assert not edited
    else:  # ours was edited in place
        assert not added
        assert [c.dest.weight for c in edited] == [2]
    assert backend.state == LbState()  # removed on stop (no -I)


def test_a_backend_flush_is_used_and_dont_release_keeps_the_table() -> None:
    backend = FlushingBackend(before())
    app = CheckApp(config("lvs_flush"), CheckOptions(dont_release_ipvs=True), backend)
    asyncio.run(run_until(app, lambda: backend.state == WANTED))
    assert backend.flushed == 1
    assert backend.state == WANTED  # -I


def test_the_configured_backend_is_chosen_logged_and_served(
    sock: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = CheckApp(config("lb_backend memory"), CheckOptions(control_socket=sock))
    answers: list[dict[str, object]] = []

    def ready() -> bool:
        return os.path.exists(sock) and app.backend.state == WANTED  # type: ignore[attr-defined]

    with caplog.at_level(logging.INFO, logger="pykeepalived.check"):
        asyncio.run(run_until(app, ready, lambda: answers.append(get_json(sock, "/lb"))))
    assert app.backend_name == "memory"
    assert "load-balancer backend: memory (lb_backend memory: " in caplog.text
    (answer,) = answers
    assert answer["backend"] == "memory"
    assert answer["services"][0]["destinations"][0]["weight"] == 2  # type: ignore[index]
    assert not os.path.exists(sock)  # closed on stop


def test_the_command_line_wins_and_an_unavailable_backend_stops_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(choose.BACKENDS, "nftables", ("klb_no_such_module", "Nope"))
    app = CheckApp(config("lb_backend memory"), CheckOptions(lb_backend="nftables"))
    with pytest.raises(BackendUnavailable, match="nftables is not available"):
        asyncio.run(app.run())


def test_the_control_socket_follows_the_options() -> None:
    assert control_socket_path(DaemonOptions()) == DEFAULT_SOCKET
    assert control_socket_path(DaemonOptions(checkers_pid_file="/tmp/x/c.pid")) == (
        "/tmp/x/checker.sock"
    )
    options = DaemonOptions(checkers_pid_file="/tmp/x/c.pid", control_socket="/tmp/y.sock")
    assert control_socket_path(options) == "/tmp/y.sock"


def test_an_unknown_lb_backend_on_the_command_line_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert daemon_cli.main(["--lb-backend", "bogus", "-f", "/nonexistent"]) == ExitCode.USAGE
    assert "Unknown load-balancer backend 'bogus'" in capsys.readouterr().err
    help_text = usage("pykeepalived", daemon_cli.OPTIONS)
    assert "--lb-backend" in help_text
    assert "--control-socket" in help_text


class BrokenFlush(MemoryBackend):
    async def flush(self) -> None:
        raise BackendError(None, "flush refused")


def test_a_failed_flush_is_logged_and_the_table_still_reconciled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = BrokenFlush(before())
    app = CheckApp(config("lvs_flush"), CheckOptions(), backend)
    asyncio.run(run_until(app, lambda: backend.state == WANTED))
    assert "lvs_flush failed: flush refused" in caplog.text
