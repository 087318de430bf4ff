"""The human tables of the commands, at 80 and 120 columns."""

from __future__ import annotations

import pytest

from trio_kaspa_peer._cli import _listen


@pytest.mark.parametrize("columns", [80, 120])
def test_listen_statistics_give_one_line_a_peer(
    columns: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    summary = {"uptime_s": 24.642, "peers": 2, "address_requests": 1, "refusals": 0}
    peer = {
        "user_agent": "/kaspad:0.12.20/kaspad:0.12.20/",
        "seconds": 19.8,
        "messages_received": 4,
        "messages_sent": 4,
        "bytes_received": 234,
        "bytes_sent": 143,
        "closed": "the connection closed while the stream was open",
    }
    peers = [{"peer": "127.0.0.1:46490", **peer}, {"peer": "[2001:db8::1]:16111", **peer}]
    _listen._print(summary, peers)
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= columns
    assert any("24.6" in line for line in lines)
    rule = max(i for i, line in enumerate(lines) if line.strip().startswith("─"))
    body = []
    for line in lines[rule + 1 :]:
        if not line.strip():
            break
        body.append(line)
    assert len(body) == 2  # each peer on one line, nothing folded under it
    rows = [line for line in body if "127.0.0.1:46490" in line or "[2001:db8::1]:16111" in line]
    assert len(rows) == 2
    for row in rows:
        for cell in ("19.8 s", "4/4", "234/143"):
            assert cell in row
    if columns == 120:
        assert any("/kaspad:0.12.20/kaspad:0.12.20/" in row for row in rows)


def test_watch_says_no_block_until_one_came(capsys: pytest.CaptureFixture[str]) -> None:
    from rich.console import Console

    from trio_kaspa_peer._cli import _watch

    stats = _watch.WatchStats(gap_threshold=10)
    data = stats.snapshot(reset=False)
    assert data["seconds_since_block"] is None  # JSON: null, not the time since the start
    Console(width=80).print(_watch._view(data, "watch"))
    assert "none yet" in capsys.readouterr().out
    stats.add((b"\x01" * 32,), ())
    data = stats.snapshot(reset=False)
    assert data["seconds_since_block"] is not None
    assert data["seconds_since_block"] < 1
    Console(width=80).print(_watch._view(data, "watch"))
    assert "s ago" in capsys.readouterr().out
