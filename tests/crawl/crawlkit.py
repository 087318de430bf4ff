"""Shared settings for the crawler's tests: fast timeouts, loopback allowed, both protocols."""

from __future__ import annotations

from dataclasses import replace

import pytest

from trio_kaspa_peer import ConfigError, PeerConfig, wire
from trio_kaspa_peer.crawl import CrawlConfig, adapter_for


def _missing(protocol: str) -> str | None:
    """Why the crawler cannot speak ``protocol`` yet (``None`` when it can)."""
    try:
        adapter_for(PeerConfig(protocol=protocol, net=wire.KaspaNet.SIMNET))
    except ConfigError as exc:
        return str(exc)
    return None


PROTOCOLS = [
    pytest.param(p, marks=pytest.mark.skipif(_missing(p) is not None, reason=str(_missing(p))))
    for p in ("v1", "modern")
]
"""Both protocols; one the library does not speak yet is skipped, with the reason."""


def peer_config(protocol: str, **options: object) -> PeerConfig:
    """The simnet config of ``protocol``."""
    return PeerConfig(protocol=protocol, net=wire.KaspaNet.SIMNET, **options)  # type: ignore[arg-type]


def fast_crawl_config(protocol: str = "v1", **options: object) -> CrawlConfig:
    """A crawl config for loopback tests: short timeouts, 127.0.0.0/8 allowed."""
    config = CrawlConfig(
        peer=peer_config(protocol, user_agent_name="test-crawler"),
        allow=("127.0.0.0/8",),
        connect_timeout=0.8,
        handshake_timeout=1.5,
        step_timeout=1.0,
        probe_timeout=10.0,
        retries=1,
        retry_backoff=0.1,
    )
    return replace(config, **options)  # type: ignore[arg-type]
