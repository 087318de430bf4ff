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


def test_listen_shows_user_agents_without_the_library_s_own_part(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    summary = {"uptime_s": 1.0, "peers": 1, "address_requests": 0, "refusals": 0}
    peer = {
        "peer": "127.0.0.1:46490",
        "user_agent": "/trio-kaspa-peer:0.2.0/kaspa-peer:0.2.0/",
        "seconds": 0.1,
        "messages_received": 5,
        "messages_sent": 5,
        "bytes_received": 144,
        "bytes_sent": 142,
        "closed": "the remote ended its side of the stream (END_STREAM)",
    }
    _listen._print(summary, [peer])
    assert "/kaspa-peer:0.2.0/ " in capsys.readouterr().out  # what tells peers apart, whole
    assert _listen._agent("/trio-kaspa-peer:0.2.0/") == "/trio-kaspa-peer:0.2.0/"
    assert _listen._agent("/kaspad:0.12.20/") == "/kaspad:0.12.20/"


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


def test_shares_add_up_to_100() -> None:
    from trio_kaspa_peer._cli._display import shares

    assert shares([3, 3, 2]) == [38, 37, 25]  # rounded alone: 38 + 38 + 25 = 101
    assert shares([1, 1, 1]) == [34, 33, 33]
    assert shares([5]) == [100]
    assert shares([]) == []


@pytest.mark.parametrize("columns", [80, 120])
def test_summary_at_80_and_120_columns(columns: int, capsys: pytest.CaptureFixture[str]) -> None:
    from rich.console import Console

    from trio_kaspa_peer._cli._display import print_summary
    from trio_kaspa_peer.crawl import CrawlProgress, FailureReason, NodeAddress, NodeRecord
    from trio_kaspa_peer.crawl import NodeStatus as S

    records = [
        NodeRecord(NodeAddress("192.0.2.1", 16111 + i), "v1", S.REACHABLE, user_agent=agent)
        for i, agent in enumerate(["/a:1/"] * 3 + ["/b:1/"] * 3 + ["/c:1/"] * 2)
    ]
    detail = (
        "the handshake with 192.0.2.9:16111 failed: the remote answered with HTTP/2: it "
        "speaks the modern protocol (PeerConfig(protocol='modern')), not protocol 1"
    )
    records.append(
        NodeRecord(
            NodeAddress("192.0.2.9", 16111),
            "v1",
            S.UNREACHABLE,
            reason=FailureReason.PROTOCOL_ERROR,
            detail=detail,
        )
    )
    progress = CrawlProgress(
        discovered=9, queued=0, in_flight=0, reached=8, filtered=0, failed=1, retrying=0,
        probes=9, gossip_entries=0, over_limit=0, pruned=0, elapsed=1.0, rate=9.0, eta=0.0,
        done=True,
    )  # fmt: skip
    print_summary(Console(width=columns), records, progress, "v1-simnet", title="t")
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= columns
    text = " ".join(out.split())
    # The part that says why, whole, wrapped if need be, in the command's own terms.
    assert "answered with HTTP/2: it speaks the modern protocol (--protocol modern)" in text
    assert "PeerConfig" not in text
    assert "192.0.2.9" not in text
    assert "…" not in out
    agents = [line.split() for line in lines if line.strip().startswith(("/a:1/", "/b:1/"))]
    agents += [line.split() for line in lines if line.strip().startswith("/c:1/")]
    assert sum(int(row[-2]) for row in agents) == 100
