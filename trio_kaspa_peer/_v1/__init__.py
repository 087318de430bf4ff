"""Protocol 1's sans-IO core (kaspad v0.5.0's peer package).  No Trio here."""

from __future__ import annotations

from ..wire import NetAddress
from ._core import V1Core
from ._handshake import Stage, V1Handshake
from ._inventory import INV_KEY, Inventory, as_list, inv_key
from ._stall import StallWatch

__all__ = [
    "INV_KEY",
    "Inventory",
    "Stage",
    "StallWatch",
    "V1Core",
    "V1Handshake",
    "as_list",
    "inv_key",
    "remote_net_address",
]


def remote_net_address(address: tuple[str, int] | None, services: int) -> NetAddress | None:
    """The remote's address as protocol 1 writes it in our version (``None``: unknown)."""
    if address is None:
        return None
    try:
        return NetAddress(address[0], address[1], services)
    except ValueError:  # not an IP address (a name, a test stream's label)
        return None
