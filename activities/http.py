"""http_fetch and http_post: private addresses refused, bodies capped, posts idempotent."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from temporalio.exceptions import ApplicationError

from activities.retry_after import retry_after
from workflows.actions import HttpFetchParams, HttpPostParams
from workflows.contracts import ActionInput
from workflows.durations import parse_duration
from workflows.errors import FailureType
from workflows.payloads import MAX_DEPTH, json_depth

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
MAX_JSON_DEPTH = MAX_DEPTH - 2
"""A page's `json` sits two levels into the action's result; a deeper page keeps only its
`text`, so it can still cross Temporal's wire (workflows/payloads.py)."""


def _effective_address(address: IpAddress) -> IpAddress:
    """The IPv4 address that an IPv6 address carries (IPv4-mapped and -compatible, NAT64,
    6to4, Teredo's client): where a connection to it ends up. Other addresses as they are."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address in NAT64 or (int(address) >> 32 == 0 and int(address) > 1):  # not :: or ::1
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    return address


def _refused(address: IpAddress) -> bool:
    """Non-public (private, loopback, link-local, reserved...) or multicast: the address
    itself or the IPv4 address it carries. Never looser than the address alone."""
    return any(a.is_multicast or not a.is_global for a in (address, _effective_address(address)))


@dataclass(frozen=True)
class AddressGuard:
    """Refuse private, loopback, link-local and multicast targets (also when an IPv6 address
    carries one) unless the worker's allowlist names them."""

    allowed_hosts: frozenset[str] = frozenset()
    allowed_networks: tuple[IpNetwork, ...] = ()

    @classmethod
    def from_list(cls, entries: Iterable[str]) -> AddressGuard:
        hosts, networks = set(), []
        for entry in (e.strip() for e in entries if e.strip()):
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower())
        return cls(frozenset(hosts), tuple(networks))

    async def check(self, url: str) -> list[str] | None:
        """Refuse the URL, or give the addresses it was checked against (IPv4 first), so the
        request goes to one of them and not to whatever a second DNS answer names (DNS
        rebinding). None for a host name the allowlist names: resolved as usual."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ApplicationError(
                f"refusing {url!r}: only http and https URLs",
                type=FailureType.URL_REFUSED,
                non_retryable=True,
            )
        host = parts.hostname.lower()
        if host in self.allowed_hosts:
            return None
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except socket.gaierror as exc:
            raise ApplicationError(
                f"cannot resolve {host}: {exc.strerror}", type=FailureType.DNS_ERROR
            ) from None
        for info in infos:
            address = ipaddress.ip_address(info[4][0])
            effective = _effective_address(address)
            if any(a in net for net in self.allowed_networks for a in (address, effective)):
                continue
            if _refused(address):
                shown = address if effective is address else f"{address}, which reaches {effective}"
                raise ApplicationError(
                    f"refusing {url!r}: {host} is a non-public address ({shown}); add it to "
                    "HTTP_ALLOWLIST on the worker to allow it",
                    type=FailureType.URL_REFUSED,
                    non_retryable=True,
                )
        addresses = dict.fromkeys(str(info[4][0]) for info in infos)  # in order, once each
        return sorted(addresses, key=lambda address: ":" in address)


class HttpActions:
    def __init__(self, client: httpx.AsyncClient, guard: AddressGuard, max_body_bytes: int):
        self._client = client
        self._guard = guard
        self._max_body = max_body_bytes

    async def fetch(self, params: HttpFetchParams, request: ActionInput) -> dict[str, Any]:
        return await self._send("GET", params.url, params.headers, params.timeout, {})

    async def post(self, params: HttpPostParams, request: ActionInput) -> dict[str, Any]:
        headers = {"Idempotency-Key": request.idempotency_key, **params.headers}
        body: dict[str, Any] = {}
        if params.json_body is not None:
            body["json"] = params.json_body
        elif params.data is not None:
            body["data" if isinstance(params.data, dict) else "content"] = params.data
        return await self._send("POST", params.url, headers, params.timeout, body)

    async def _send(
        self, method: str, url: str, headers: dict[str, str], timeout: Any, body: dict[str, Any]
    ) -> dict[str, Any]:
        checked = await self._guard.check(url)
        # https goes by name: a rebound private address cannot show a certificate for the
        # host, so TLS refuses it, and pooled TLS connections stay keyed by host name.
        https = httpx.URL(url).scheme == "https"
        addresses: list[str | None] = [None] if checked is None or https else list(checked)
        seconds = parse_duration(timeout).total_seconds()
        try:
            for address in addresses:
                try:
                    response, raw, truncated = await self._exchange(
                        method, url, address, headers, seconds, body
                    )
                    break
                except (httpx.ConnectError, httpx.ConnectTimeout):
                    if address == addresses[-1]:
                        raise
        except httpx.TimeoutException:
            raise ApplicationError(
                f"{method} {url}: timed out after {timeout}", type=FailureType.HTTP_TIMEOUT
            ) from None
        except httpx.TransportError as exc:
            raise ApplicationError(
                f"{method} {url}: {exc}", type=FailureType.HTTP_CONNECT_ERROR
            ) from None
        text = raw.decode(response.encoding or "utf-8", errors="replace")
        status = response.status_code
        if status == 429 or status >= 500:
            raise ApplicationError(
                f"{method} {url}: HTTP {status}: {text[:200]}",
                type=FailureType.http(status),
                next_retry_delay=retry_after(response.headers),
            )
        if status >= 400:
            raise ApplicationError(
                f"{method} {url}: HTTP {status}: {text[:200]}",
                type=FailureType.http(status),
                non_retryable=True,
            )
        result: dict[str, Any] = {
            "status": status,
            "headers": dict(response.headers),
            "text": text
            + (f"\n[truncated: body over {self._max_body} bytes]" if truncated else ""),
            "truncated": truncated,
            "json": None,
        }
        json_page = "json" in response.headers.get("content-type", "")
        if json_page and not truncated and json_depth(raw) <= MAX_JSON_DEPTH:
            with contextlib.suppress(json.JSONDecodeError):
                result["json"] = json.loads(text)
        return result

    async def _exchange(
        self,
        method: str,
        url: str,
        address: str | None,
        headers: dict[str, str],
        seconds: float,
        body: dict[str, Any],
    ) -> tuple[httpx.Response, bytes, bool]:
        """One request to one checked address (or by name, for an allowlisted host)."""
        target, headers = _pinned(url, address, headers)
        async with self._client.stream(
            method, target, headers=headers, timeout=seconds, **body
        ) as response:
            raw, truncated = await self._read_capped(response)
        return response, raw, truncated

    async def _read_capped(self, response: httpx.Response) -> tuple[bytes, bool]:
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size > self._max_body:
                return b"".join(chunks)[: self._max_body], True
        return b"".join(chunks), False


def _pinned(
    url: str, address: str | None, headers: dict[str, str]
) -> tuple[httpx.URL, dict[str, str]]:
    """The request aimed at the checked address, naming its host in the Host header."""
    parsed = httpx.URL(url)
    if address is None:
        return parsed, headers
    named = any(key.lower() == "host" for key in headers)
    host = {} if named else {"Host": parsed.netloc.decode("ascii")}
    return parsed.copy_with(host=address), {**host, **headers}
