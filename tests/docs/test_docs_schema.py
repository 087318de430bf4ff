"""The store's schema as docs/howto.rst describes it is the one the code writes."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from trio_kaspa_peer.crawl import SCHEMA_VERSION, FailureReason, NodeStatus, NodeStore

HOWTO = Path(__file__).resolve().parents[2] / "docs" / "howto.rst"
TITLE = "Read the store from another program"


def _section() -> str:
    text = HOWTO.read_text(encoding="utf-8")
    start = text.index(TITLE + "\n---")
    end = text.index("\n---", start + len(TITLE) + 4)
    return text[start : text.rindex("\n\n", start, end)]


def _described() -> dict[str, list[str]]:
    """Each table's bullet list: the names each bullet describes, in order."""
    tables: dict[str, list[str]] = {}
    current: list[str] | None = None
    for block in _section().split("\n\n"):
        heading = re.match(r"``(\w+)``: ", block)
        if heading and not block.startswith("* "):
            current = tables.setdefault(heading.group(1), [])
            continue
        if current is None or not block.startswith("* "):
            continue
        for item in re.split(r"\n(?=\* )", block):
            item = " ".join(item.split())
            head = item.split(": ", 1)[0]
            for name in re.findall(r"``(\w+)``", head):
                if name not in current:
                    current.append(name)
        current = None
    return tables


def test_the_documented_schema_is_the_stores(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    NodeStore(path, network="n").close()
    db = sqlite3.connect(path)
    try:
        columns = {
            table: [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
            for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        meta = [key for (key,) in db.execute("SELECT key FROM meta ORDER BY rowid")]
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 1
    finally:
        db.close()
    described = _described()
    assert described.pop("meta") == meta
    assert described == {t: c for t, c in columns.items() if t != "meta"}
    section = _section()
    assert "``key`` TEXT, primary key; ``value`` TEXT" in section
    assert columns["meta"] == ["key", "value"]
    assert f"schema,\nversion {SCHEMA_VERSION}." in section
    for value in [*(s.value for s in NodeStatus), *(r.value for r in FailureReason)]:
        assert f"``{value}``" in section
