"""The crawl report: one self-contained HTML file, opened with no server and no network.

Charts are drawn by plotly (https://plotly.com/python/): the Python library
builds each figure, and plotly.js is embedded in the page itself, so the
file works offline.  plotly is a dependency of the ``cli`` extra; without it
:func:`write_report` raises :class:`~trio_kaspa_peer.crawl.ReportError`.

The page shows the topology (who gave whom), the user-agent and
protocol-version distributions, why nodes were not reached, the
handshake-time histogram and reachability over time.  Every text that came
from a remote is escaped: a user agent cannot inject markup or script.
"""

from __future__ import annotations

import html
import math
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from .._errors import UsageError
from .._version import __version__
from ._errors import ReportError
from ._records import NodeRecord, NodeStatus
from ._store import CrawlRun, NodeStore, ProbeSample

__all__ = ["ReportData", "build_report", "write_report"]

MAX_GRAPH_NODES: Final = 5000
"""The most nodes drawn in the topology (the rest are counted, not drawn)."""
MAX_GRAPH_EDGES: Final = 20000
MAX_CATEGORIES: Final = 15
"""Bars per distribution; the rest are summed as "other"."""

_STATUS_COLORS: Final = {
    NodeStatus.REACHABLE: "#2a9d8f",
    NodeStatus.FILTERED: "#e9c46a",
    NodeStatus.UNREACHABLE: "#e76f51",
    NodeStatus.PENDING: "#adb5bd",
}


def crawl_title(network: str) -> str:
    """``kaspa-mainnet crawl`` (a modern network's name says kaspa already), ``kaspa
    simnet crawl``."""
    return f"{network} crawl" if network.startswith("kaspa") else f"kaspa {network} crawl"


@dataclass(frozen=True, slots=True)
class ReportData:
    """What a report shows: a store's contents (see :meth:`from_store`)."""

    network: str
    nodes: tuple[NodeRecord, ...]
    edges: tuple[tuple[str, str], ...] = ()
    history: tuple[ProbeSample, ...] = ()
    runs: tuple[CrawlRun, ...] = ()
    title: str = ""
    generated: float = field(default_factory=time.time)

    @classmethod
    def from_store(cls, store: NodeStore, *, title: str = "") -> ReportData:
        """Everything ``store`` holds."""
        return cls(
            network=store.network,
            nodes=tuple(store.nodes()),
            edges=tuple(store.edges()),
            history=tuple(store.history()),
            runs=tuple(store.runs()),
            title=title,
        )


def _plotly() -> tuple[Any, Any]:
    try:
        import plotly.graph_objects as go
        import plotly.io as pio
    except ImportError:
        raise ReportError(
            "the report needs plotly, which is not installed; "
            "install the cli extra: pip install 'trio-kaspa-peer[cli]'"
        ) from None
    return go, pio


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title},
        "template": "plotly_white",
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        "height": 420,
    }
    layout.update(extra)
    return layout


def _top(counter: Counter[str]) -> tuple[list[str], list[int]]:
    common = counter.most_common(MAX_CATEGORIES)
    rest = sum(counter.values()) - sum(n for _, n in common)
    # plotly reads "<br>", "<a href>" and friends in labels as markup: remote text is escaped.
    labels = [html.escape(name) for name, _ in common]
    values = [n for _, n in common]
    if rest:
        labels.append(f"other ({len(counter) - len(common)})")
        values.append(rest)
    return labels, values


def _topology(go: Any, data: ReportData) -> Any:
    """Nodes on rings by their distance from the seeds; lines from giver to given."""
    nodes = sorted(data.nodes, key=lambda r: (r.depth, str(r.source or ""), str(r.address)))
    drawn = nodes[:MAX_GRAPH_NODES]
    by_depth: dict[int, list[NodeRecord]] = defaultdict(list)
    for record in drawn:
        by_depth[record.depth].append(record)
    position: dict[str, tuple[float, float]] = {}
    angle_of: dict[str, float] = {}
    for depth in sorted(by_depth):
        ring = by_depth[depth]
        ring.sort(key=lambda r: (angle_of.get(str(r.source), 0.0), str(r.address)))
        count = len(ring)
        for i, record in enumerate(ring):
            angle = 2 * math.pi * (i + 0.5) / count
            key = str(record.address)
            angle_of[key] = angle
            radius = float(depth) if count > 1 or depth else 0.0
            position[key] = (radius * math.cos(angle), radius * math.sin(angle))
    xs: list[float | None] = []
    ys: list[float | None] = []
    for giver, given in data.edges[:MAX_GRAPH_EDGES]:
        a = position.get(giver)
        b = position.get(given)
        if a is None or b is None:
            continue
        xs += [a[0], b[0], None]
        ys += [a[1], b[1], None]
    figure = go.Figure()
    figure.add_trace(
        go.Scattergl(
            x=xs,
            y=ys,
            mode="lines",
            line={"width": 0.5, "color": "rgba(120,120,120,0.35)"},
            hoverinfo="skip",
            name="gave address",
        )
    )
    for status, color in _STATUS_COLORS.items():
        members = [r for r in drawn if r.status is status]
        if not members:
            continue
        figure.add_trace(
            go.Scattergl(
                x=[position[str(r.address)][0] for r in members],
                y=[position[str(r.address)][1] for r in members],
                mode="markers",
                marker={"size": 7, "color": color, "line": {"width": 0.5, "color": "#333"}},
                name=f"{status.value} ({len(members)})",
                text=[_hover(r) for r in members],
                hoverinfo="text",
            )
        )
    hidden = len(nodes) - len(drawn)
    title = "Topology: who gave whom (rings: hops from the seeds)"
    if hidden:
        title += f"; {hidden} nodes not drawn"
    return figure.update_layout(
        **_layout(
            title,
            height=640,
            xaxis={"visible": False},
            yaxis={"visible": False, "scaleanchor": "x"},
            legend={"orientation": "h"},
        )
    )


def _hover(record: NodeRecord) -> str:
    parts = [str(record.address), record.status.value]
    if record.user_agent:
        parts.append(record.user_agent[:80])
    if record.reason is not None:
        parts.append(record.reason.value)
    return "<br>".join(html.escape(p) for p in parts)


def _bars(go: Any, counter: Counter[str], title: str, axis: str) -> Any:
    labels, values = _top(counter)
    figure = go.Figure(go.Bar(x=values, y=labels, orientation="h", marker={"color": "#264653"}))
    return figure.update_layout(
        **_layout(
            title,
            height=max(260, 60 + 28 * len(labels)),
            yaxis={"autorange": "reversed", "automargin": True, "title": {"text": axis}},
            xaxis={"title": {"text": "nodes"}},
        )
    )


def _handshakes(go: Any, data: ReportData) -> Any:
    values = [r.handshake_ms for r in data.nodes if r.reachable and r.handshake_ms is not None]
    figure = go.Figure(go.Histogram(x=values, nbinsx=40, marker={"color": "#2a9d8f"}))
    return figure.update_layout(
        **_layout(
            f"Handshake time ({_count(len(values), 'node')} reached: reachable or filtered)",
            xaxis={"title": {"text": "milliseconds"}},
            yaxis={"title": {"text": "nodes"}},
        )
    )


def _over_time(go: Any, data: ReportData) -> Any:
    history = data.history
    figure = go.Figure()
    if history:
        start = history[0].time
        span = max(history[-1].time - start, 1.0)
        bucket = max(span / 60, 1.0)
        reached: dict[int, set[str]] = defaultdict(set)
        failed: dict[int, set[str]] = defaultdict(set)
        for sample in history:
            index = int((sample.time - start) / bucket)
            target = failed if sample.status is NodeStatus.UNREACHABLE else reached
            target[index].add(sample.address)
        indexes = range(int(span / bucket) + 1)
        times = [
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(start + i * bucket)) for i in indexes
        ]
        figure.add_trace(
            go.Scatter(
                x=times,
                y=[len(reached.get(i, ())) for i in indexes],
                name="reached",
                mode="lines+markers",
                line={"color": _STATUS_COLORS[NodeStatus.REACHABLE]},
            )
        )
        figure.add_trace(
            go.Scatter(
                x=times,
                y=[len(failed.get(i, ())) for i in indexes],
                name="unreachable",
                mode="lines+markers",
                line={"color": _STATUS_COLORS[NodeStatus.UNREACHABLE]},
            )
        )
    return figure.update_layout(
        **_layout(
            f"Reachability over time ({_count(len(history), 'outcome')} recorded, "
            f"{_count(len(data.runs), 'crawl')}; retries are not recorded)",
            xaxis={"title": {"text": "time"}},
            yaxis={"title": {"text": "distinct nodes probed"}},
        )
    )


def _summary_rows(data: ReportData) -> list[tuple[str, str]]:
    counts = Counter(r.status for r in data.nodes)
    reachable = [r for r in data.nodes if r.reachable]
    handshakes = sorted(r.handshake_ms for r in reachable if r.handshake_ms is not None)
    pings = sorted(r.ping_ms for r in reachable if r.ping_ms is not None)
    rows = [
        ("network", data.network),
        ("nodes known", str(len(data.nodes))),
        ("reachable", str(counts[NodeStatus.REACHABLE])),
        ("filtered", str(counts[NodeStatus.FILTERED])),
        ("unreachable", str(counts[NodeStatus.UNREACHABLE])),
        ("not probed", str(counts[NodeStatus.PENDING])),
        ("gossip links", str(len(data.edges))),
    ]
    if handshakes:
        rows.append(("median handshake", f"{statistics.median(handshakes):.1f} ms"))
    if pings:
        rows.append(("median ping", f"{statistics.median(pings):.1f} ms"))
    if data.runs:
        last = data.runs[-1]
        state = "completed" if last.completed else "interrupted"
        rows.append(("crawls", f"{len(data.runs)} (last {state})"))
    return rows


def _count(n: int, noun: str) -> str:
    """``1 node``, ``2 nodes``."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _json_for_script(text: str) -> str:
    """JSON text safe inside a ``<script>`` element."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_PAGE: Final = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="trio-kaspa-peer {version}">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 1em;
       color: #222; }}
h1 {{ font-size: 1.5em; }}
table.summary {{ border-collapse: collapse; margin: 1em 0; }}
table.summary td {{ padding: 0.2em 1em 0.2em 0; }}
table.summary td:first-child {{ color: #555; }}
.chart {{ margin: 1.5em 0; border-top: 1px solid #ddd; }}
footer {{ color: #777; font-size: 0.85em; margin-top: 2em; }}
</style>
<script>{plotly_js}</script>
</head>
<body>
<h1>{title}</h1>
<p>Generated {generated} by trio-kaspa-peer {version}. This file needs no server and no
network.</p>
<noscript><p><strong>The charts need JavaScript.</strong></p></noscript>
<table class="summary">
{summary}
</table>
{divs}
<script type="application/json" id="figures">{figures}</script>
<script>
(function () {{
  var figures = JSON.parse(document.getElementById("figures").textContent);
  var plots = figures.map(function (figure, i) {{
    var div = document.getElementById("chart-" + i);
    return Plotly.newPlot(div, figure.data, figure.layout,
                          {{responsive: true, displaylogo: false}});
  }});
  Promise.all(plots).then(function () {{
    var drawn = 0;
    figures.forEach(function (figure, i) {{
      var div = document.getElementById("chart-" + i);
      if (div.querySelector(".main-svg")) {{ drawn += 1; }}
    }});
    document.body.setAttribute("data-charts-drawn", String(drawn));
  }}, function (error) {{
    document.body.setAttribute("data-charts-error", String(error));
  }});
}})();
</script>
<footer>Charts by plotly.js, embedded.</footer>
</body>
</html>
"""


def build_report(data: ReportData) -> str:
    """The report page for ``data``, as text."""
    if not isinstance(data, ReportData):
        raise UsageError(f"build_report takes a ReportData, got {type(data).__name__}")
    go, pio = _plotly()
    from plotly.offline import get_plotlyjs

    nodes = data.nodes
    reached = [r for r in nodes if r.reachable]
    agents: Counter[str] = Counter(r.user_agent or "(empty)" for r in reached)
    versions: Counter[str] = Counter(str(r.protocol_version) for r in reached)
    reasons: Counter[str] = Counter(
        r.reason.value
        for r in nodes
        if r.reason is not None and r.status is not NodeStatus.PENDING
    )
    figures = [
        _topology(go, data),
        _bars(
            go,
            agents,
            f"User agents ({_count(len(reached), 'node')} reached: reachable or filtered)",
            "user agent",
        ),
        _bars(go, versions, "Protocol versions advertised", "protocol version"),
        _bars(go, reasons, "Why nodes were not reached (or were filtered)", "reason"),
        _handshakes(go, data),
        _over_time(go, data),
    ]
    figure_json = "[" + ",".join(pio.to_json(f, validate=True) for f in figures) + "]"
    # plotly.js has no "</script" inside; check rather than trust.
    plotly_js = get_plotlyjs()
    if "</script" in plotly_js.lower():  # pragma: no cover - a plotly.js that breaks the page
        raise ReportError("the embedded plotly.js contains '</script'")
    title = data.title or crawl_title(data.network)
    summary = "\n".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
        for k, v in _summary_rows(data)
    )
    divs = "\n".join(f'<div class="chart" id="chart-{i}"></div>' for i in range(len(figures)))
    return _PAGE.format(
        version=html.escape(__version__),
        title=html.escape(title),
        generated=html.escape(
            time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(data.generated))
        ),
        plotly_js=plotly_js,
        summary=summary,
        divs=divs,
        figures=_json_for_script(figure_json),
    )


def write_report(
    source: NodeStore | ReportData | str | Path,
    path: str | Path,
    *,
    title: str = "",
) -> Path:
    """Write the report of a store (or of a store file, or of :class:`ReportData`) to ``path``.

    Returns the path written.  The file is written whole or not at all
    (through a temporary file beside it).
    """
    if isinstance(source, ReportData):
        data = source
    elif isinstance(source, NodeStore):
        data = ReportData.from_store(source, title=title)
    elif isinstance(source, (str, Path)):
        with NodeStore(source, create=False) as store:
            data = ReportData.from_store(store, title=title)
    else:
        raise UsageError(f"cannot report on a {type(source).__name__}")
    page = build_report(data)
    target = Path(path)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(target)
    return target
