"""The offline HTML report: self-contained, escaped, and drawn by a real browser."""

from __future__ import annotations

import dataclasses
import re
import tempfile
from pathlib import Path

import pytest
import trio
from crawlkit import fast_crawl_config, peer_config

from trio_kaspa_peer.crawl import (
    NodeAddress,
    NodeRecord,
    NodeStatus,
    NodeStore,
    ReportData,
    ReportError,
    build_report,
    open_crawl,
    open_store,
    write_report,
)
from trio_kaspa_peer.testing import open_simulated_network

CHROMIUM = Path("/usr/bin/chromium")
CHARTS = 6


async def _crawled_store(path: Path) -> None:
    async with (
        open_simulated_network(40, peer_config("v1"), seed=31) as network,
        open_store(path, network="v1-simnet") as writer,
        open_crawl(network.seeds, fast_crawl_config(), store=writer) as stream,
    ):
        async for _ in stream:
            pass


async def test_report_is_self_contained(tmp_path: Path) -> None:
    db = tmp_path / "crawl.sqlite"
    await _crawled_store(db)
    out = write_report(db, tmp_path / "report.html", title="Loopback <test> crawl")
    page = out.read_text(encoding="utf-8")
    assert page.count('class="chart"') == CHARTS
    assert "<title>Loopback &lt;test&gt; crawl</title>" in page
    # Nothing is fetched: no external script, style sheet or image.
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", page)
    assert len(page) > 1_000_000  # plotly.js is inside
    with NodeStore(db) as store:
        data = ReportData.from_store(store)
    assert len(data.nodes) == 40
    assert "v1-simnet" in build_report(data)
    assert not (tmp_path / "report.html.tmp").exists()


def _hostile_data() -> ReportData:
    record = NodeRecord(
        address=NodeAddress("192.0.2.1", 1),
        protocol="v1",
        status=NodeStatus.REACHABLE,
        user_agent='</script><script>alert("ua")</script><b>',
        protocol_version=1,
        handshake_ms=1.0,
        first_seen=1.0,
        last_seen=1.0,
        last_attempt=1.0,
        last_success=1.0,
        attempts=1,
    )
    other = dataclasses.replace(record, address=NodeAddress("192.0.2.2", 1), depth=1)
    return ReportData(
        network="x</title><script>alert(2)</script>",
        nodes=(record, other),
        edges=(("192.0.2.1:1", "192.0.2.2:1"),),
    )


def test_remote_text_cannot_inject_markup() -> None:
    page = build_report(_hostile_data())
    assert "<script>alert" not in page
    assert "<b>" not in page.split("<body>")[1]
    # The user agent is in the figure data, escaped for HTML (plotly reads entities back).
    assert "&amp;lt;/script&amp;gt;" not in page
    assert "\\u0026lt;\\u002fscript\\u0026gt;" in page


def test_report_without_plotly(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    for name in ("plotly", "plotly.graph_objects", "plotly.io"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ReportError, match=r"pip install 'trio-kaspa-peer\[cli\]'"):
        build_report(_hostile_data())


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium)"
)
async def test_report_draws_in_headless_chromium(tmp_path: Path) -> None:
    db = tmp_path / "crawl.sqlite"
    await _crawled_store(db)
    out = write_report(db, tmp_path / "report.html")
    hostile = write_report(_hostile_data(), tmp_path / "hostile.html")
    for page, charts in ((out, CHARTS), (hostile, CHARTS)):
        dom = await _render(page)
        assert f'data-charts-drawn="{charts}"' in dom, dom[-2000:]
        assert 'data-charts-error="' not in dom
        assert dom.count('class="main-svg"') >= charts
        assert "<script>alert" not in dom


async def _render(page: Path) -> str:
    uri = await trio.to_thread.run_sync(lambda: page.absolute().as_uri())
    with tempfile.TemporaryDirectory() as profile:
        command = [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=15000",
            "--dump-dom",
            uri,
        ]
        with trio.fail_after(90):
            done = await trio.run_process(
                command, capture_stdout=True, capture_stderr=True, check=False
            )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout.decode()


def test_summary_and_titles_count_as_the_command_line_does() -> None:
    # Two nodes reached (one of them filtered): medians as statistics.median takes them, and
    # the charts of reached nodes say that filtered ones are among them.
    data = _hostile_data()
    first, second = data.nodes
    second = dataclasses.replace(second, status=NodeStatus.FILTERED, handshake_ms=2.0)
    first = dataclasses.replace(first, ping_ms=3.0)
    page = build_report(dataclasses.replace(data, nodes=(first, second)))
    assert "<td>median handshake</td><td>1.5 ms</td>" in page
    assert "Handshake time (2 nodes reached: reachable or filtered)" in page
    assert "User agents (2 nodes reached: reachable or filtered)" in page
    over_time = "Reachability over time (0 outcomes recorded, 0 crawls; retries are not recorded)"
    assert over_time in page
