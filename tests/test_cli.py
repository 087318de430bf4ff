"""The demo command runs end to end on loopback."""

from __future__ import annotations

import pytest

from trio_kaspa_peer import _cli


def test_demo_prints_every_peer(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli.main(["demo", "--peers", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count("client ") == 3
    assert out.count("server<-127.0.0.1") == 3


async def test_run_demo_stats() -> None:
    results = await _cli.run_demo(2)
    clients = [s for name, s in results.items() if name.startswith("client")]
    servers = [s for name, s in results.items() if name.startswith("server")]
    assert len(clients) == len(servers) == 2
    for stats in clients:
        assert stats.last_ping_micros > 0
        assert stats.verack_received
        assert not stats.inbound
    assert all(s.inbound for s in servers)


def test_bad_arguments() -> None:
    with pytest.raises(SystemExit):
        _cli.main(["demo", "--peers", "0"])
