"""Test-side helpers for the local environment: a hand-driven clock, a gRPC client, /proc."""

from __future__ import annotations

import socket
import time
from typing import Any

import grpc
from botocore.config import Config
from momento_wire_types import auth_pb2, auth_pb2_grpc, controlclient_pb2, controlclient_pb2_grpc

# One attempt per call: a test that injects a fault must see it, not botocore's retry of it.
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})
LOOPBACK_ONLY = [("grpc.enable_http_proxy", 0)]


class FakeClock:
    """A clock the test moves by hand, starting at the real time."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class MomentoClient:
    """The two calls the rotator makes, over an insecure channel as Momento's SDKs open it."""

    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address, options=LOOPBACK_ONLY)
        # The generated gRPC modules carry no type hints.
        self._auth = auth_pb2_grpc.AuthStub(self.channel)  # type: ignore[no-untyped-call]
        self._control = controlclient_pb2_grpc.ScsControlStub(  # type: ignore[no-untyped-call]
            self.channel
        )

    def refresh(self, api_key: str, refresh_token: str | None, timeout: float = 5.0) -> Any:
        request = auth_pb2._RefreshApiTokenRequest(
            api_key=api_key, refresh_token=refresh_token or ""
        )
        return self._auth.RefreshApiToken(request, timeout=timeout)

    def list_caches(self, inner_jwt: str, timeout: float = 5.0) -> Any:
        request = controlclient_pb2._ListCachesRequest()
        metadata = [("authorization", inner_jwt)]
        return self._control.ListCaches(request, metadata=metadata, timeout=timeout)


def listening_addresses(port: int) -> set[str]:
    """Local addresses of sockets listening on `port`, read from /proc (Linux only).

    IPv4-mapped IPv6 addresses are shown in their IPv4 form.
    """
    found: set[str] = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            with open(table) as rows:
                entries = [row.split() for row in rows.readlines()[1:]]
        except FileNotFoundError:
            continue
        for entry in entries:
            address, _, port_hex = entry[1].partition(":")
            if entry[3] == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                found.add(_proc_address(address, family))
    return found


def _proc_address(hex_address: str, family: int) -> str:
    # /proc prints each 32-bit word of the address in host (little-endian) byte order.
    raw = bytes.fromhex(hex_address)
    words = [raw[index : index + 4][::-1] for index in range(0, len(raw), 4)]
    address = socket.inet_ntop(family, b"".join(words))
    # A dual-stack socket bound to 127.0.0.1 shows as the IPv4-mapped ::ffff:127.0.0.1.
    return address.removeprefix("::ffff:")
