"""CheckApp.reload on the in-memory backend: only the changed entries are touched."""

from __future__ import annotations

import asyncio
import itertools
from ipaddress import IPv4Address

from pykeepalived.config.build import load_text
from pykeepalived.config.model.root import Config
from pykeepalived.daemon.check_app import CheckApp, CheckOptions
from pykeepalived.lb.memory import MemoryBackend
from pykeepalived.lb.model import ServiceKey
from pykeepalived.lb.plan import AddDest, DelDest, EditDest

WEB = ServiceKey.for_address("tcp", IPv4Address("192.0.2.1"), 80)
MAIL = ServiceKey.for_address("tcp", IPv4Address("192.0.2.1"), 25)


def config(web_weights: dict[str, int], *, mail: bool = True) -> Config:
    def block(port: int, servers: dict[str, int]) -> str:
        rs = "".join(
            f"  real_server {ip} {port} {{\n    weight {w}\n  }}\n" for ip, w in servers.items()
        )
        return f"virtual_server 192.0.2.1 {port} {{\n  protocol TCP\n  lvs_sched wrr\n{rs}}}\n"

    text = block(80, web_weights) + (block(25, {"198.51.100.20": 1}) if mail else "")
    result = load_text(text)
    assert result.config is not None, result.diagnostics
    return result.config


def test_reload_touches_only_what_changed() -> None:
    backend = MemoryBackend()
    first = config({"198.51.100.10": 1, "198.51.100.11": 1, "198.51.100.12": 1})
    app = CheckApp(first, CheckOptions(), backend=backend)

    async def main() -> list[str]:
        summaries: list[str] = []
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(app.run())
            async with asyncio.timeout(5):
                for _ in itertools.count():
                    if len(backend.state.destinations.get(WEB, {})) == 3:
                        break
                    await asyncio.sleep(0.01)
                applied: list[object] = []
                real_apply = backend.apply

                async def spy(change: object) -> None:
                    applied.append(change)
                    await real_apply(change)  # type: ignore[arg-type]

                backend.apply = spy  # type: ignore[method-assign]
                new = config({"198.51.100.10": 5, "198.51.100.11": 1, "198.51.100.13": 1})
                summaries.append(await app.reload(new))
                kinds = sorted((type(c).__name__, str(c.service)) for c in applied)  # type: ignore[attr-defined]
                assert kinds == [
                    ("AddDest", str(WEB)),
                    ("DelDest", str(WEB)),
                    ("EditDest", str(WEB)),
                ]
                edit = next(c for c in applied if isinstance(c, EditDest))
                assert edit.dest.weight == 5
                assert any(isinstance(c, AddDest) for c in applied)
                assert any(isinstance(c, DelDest) for c in applied)
                applied.clear()
                summaries.append(await app.reload(new))  # the same again: nothing
                assert applied == []
                summaries.append(await app.reload(config({"198.51.100.10": 5}, mail=False)))
            app.stop()
        assert task.result() == 0
        return summaries

    summaries = asyncio.run(main())
    assert summaries == [
        "check: 0 VS added, 0 removed, 0 changed, 1 RS added, 1 RS removed, 1 RS changed, "
        "2 unchanged; 3 table change(s)",
        "check: 0 VS added, 0 removed, 0 changed, 0 RS added, 0 RS removed, 0 RS changed, "
        "4 unchanged; 0 table change(s)",
        "check: 0 VS added, 1 removed, 0 changed, 0 RS added, 3 RS removed, 0 RS changed, "
        "1 unchanged; 3 table change(s)",
    ]
