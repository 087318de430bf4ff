"""The modern protocol's sans-IO core (gRPC over HTTP/2, protocol versions 5 to 10).  No Trio."""

from ._core import RESPONSES, ModernCore
from ._handshake import LOOPBACK_CONNECTION, ModernHandshake, Step

__all__ = ["LOOPBACK_CONNECTION", "RESPONSES", "ModernCore", "ModernHandshake", "Step"]
