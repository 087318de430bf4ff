"""One-line summaries of messages for the debug log (what the reference logs, in our words)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ..wire import (
    InvType,
    InvVect,
    Message,
    MsgAddr,
    MsgBlock,
    MsgBlockLocator,
    MsgGetAddr,
    MsgGetBlockInvs,
    MsgGetBlockLocator,
    MsgGetData,
    MsgGetHeaders,
    MsgHeaders,
    MsgInv,
    MsgNotFound,
    MsgPing,
    MsgPong,
    MsgReject,
    MsgTx,
    MsgVersion,
    RawMessage,
    UnknownMessage,
)

__all__ = ["summarize"]

_MAX_TEXT = 250


def _clean(text: str, limit: int) -> str:
    shown = "".join(c if c.isprintable() else "?" for c in text[:limit])
    return shown + ("..." if len(text) > limit else "")


def _inventory(items: Sequence[InvVect]) -> str:
    if len(items) == 1:
        return str(items[0])
    counts = Counter(
        item.type.name if isinstance(item.type, InvType) else str(item.type) for item in items
    )
    return f"{len(items)} items (" + ", ".join(f"{n} {t}" for t, n in counts.items()) + ")"


def summarize(msg: Message | RawMessage | UnknownMessage) -> str:
    """A short, printable description of ``msg`` (empty when there is nothing to add)."""
    if isinstance(msg, MsgVersion):
        return (
            f"agent {_clean(msg.user_agent, _MAX_TEXT)}, pver {msg.protocol_version}, "
            f"selected tip {msg.selected_tip_hash}"
        )
    if isinstance(msg, MsgGetAddr):
        if msg.include_all_subnetworks:
            return "all subnetworks and full nodes"
        return "full nodes" if msg.subnetwork_id is None else f"subnetwork {msg.subnetwork_id}"
    if isinstance(msg, MsgAddr):
        return f"{len(msg.addr_list)} addr"
    if isinstance(msg, (MsgPing, MsgPong)):
        return f"nonce {msg.nonce}"
    if isinstance(msg, MsgTx):
        return f"id {msg.tx_id()}, {len(msg.tx_in)} inputs, {len(msg.tx_out)} outputs"
    if isinstance(msg, MsgBlock):
        return f"hash {msg.block_hash()}, {len(msg.transactions)} tx, time {msg.header.timestamp}"
    if isinstance(msg, (MsgInv, MsgGetData, MsgNotFound)):
        return _inventory(msg.inv_list)
    if isinstance(msg, MsgGetBlockInvs):
        return f"low {msg.low_hash}, high {msg.high_hash}"
    if isinstance(msg, MsgGetBlockLocator):
        return f"high {msg.high_hash}, low {msg.low_hash}"
    if isinstance(msg, MsgBlockLocator):
        hashes = msg.block_locator_hashes
        return f"{len(hashes)} hashes" + (
            f", first {hashes[0]}, last {hashes[-1]}" if hashes else ""
        )
    if isinstance(msg, MsgGetHeaders):
        return f"start {msg.start_hash}, stop {msg.stop_hash}"
    if isinstance(msg, MsgHeaders):
        return f"{len(msg.headers)} headers"
    if isinstance(msg, MsgReject):
        text = (
            f"cmd {_clean(msg.cmd, 12)}, code {msg.code!s}, reason {_clean(msg.reason, _MAX_TEXT)}"
        )
        return text + (f", hash {msg.hash}" if msg.hash is not None else "")
    if isinstance(msg, RawMessage):
        return f"{len(msg.payload)} bytes, not decoded"
    if isinstance(msg, UnknownMessage):
        return f"unknown command, {msg.payload_length} bytes skipped"
    return ""
