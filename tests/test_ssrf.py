"""The http actions' address guard: an IPv6 address that carries an IPv4 one is judged by the
IPv4 address, and multicast is refused. Pure functions and literal URLs: no network, no DNS."""

from __future__ import annotations

import ipaddress

import pytest
from temporalio.exceptions import ApplicationError

from activities.http import AddressGuard, _effective_address, _refused
from workflows.errors import FailureType

# (address, the IPv4 address it carries or None)
EMBEDDED = [
    ("64:ff9b::7f00:1", "127.0.0.1"),  # NAT64
    ("64:ff9b::a00:1", "10.0.0.1"),
    ("2002:a9fe:a9fe::1", "169.254.169.254"),  # 6to4
    ("::127.0.0.1", "127.0.0.1"),  # IPv4-compatible
    ("::ffff:127.0.0.1", "127.0.0.1"),  # IPv4-mapped
    ("::ffff:c0a8:101", "192.168.1.1"),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1"),  # Teredo, client obfuscated
    ("::1", None),
    ("::", None),
    ("2606:4700::1111", None),
    ("8.8.8.8", None),
]


@pytest.mark.parametrize(("text", "carried"), EMBEDDED)
def test_the_effective_address_is_the_ipv4_address_an_ipv6_one_carries(text, carried):
    address = ipaddress.ip_address(text)
    assert _effective_address(address) == ipaddress.ip_address(carried or text)


REFUSED = [
    "64:ff9b::7f00:1",
    "64:ff9b::a9fe:a9fe",
    "2002:7f00:1::",
    "2002:c0a8:101::1",
    "::127.0.0.1",
    "::10.0.0.1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "2001:0:4136:e378:8000:63bf:80ff:fffe",
    "224.0.0.1",  # multicast, which Python calls global
    "239.255.255.250",
    "ff02::1",
    "ff0e::1",
    "127.0.0.1",
    "10.1.2.3",
    "169.254.169.254",
    "::1",
    "fe80::1",
    "fc00::1",
]
ALLOWED = ["8.8.8.8", "2606:4700::1111", "64:ff9b::808:808"]  # NAT64 of a public address


@pytest.mark.parametrize("text", REFUSED)
def test_non_public_and_multicast_addresses_are_refused(text):
    assert _refused(ipaddress.ip_address(text))


@pytest.mark.parametrize("text", ALLOWED)
def test_public_addresses_pass(text):
    assert not _refused(ipaddress.ip_address(text))


async def test_a_nat64_literal_of_loopback_is_refused_naming_what_it_reaches():
    with pytest.raises(ApplicationError) as caught:
        await AddressGuard().check("http://[64:ff9b::7f00:1]:8080/admin")
    assert caught.value.type == FailureType.URL_REFUSED and caught.value.non_retryable
    assert "non-public address (64:ff9b::7f00:1, which reaches 127.0.0.1)" in str(caught.value)


@pytest.mark.parametrize("url", ["http://[::ffff:10.0.0.1]/", "http://[2002:a00:1::]/"])
async def test_allowlisting_the_ipv4_network_allows_what_carries_it(url):
    with pytest.raises(ApplicationError):
        await AddressGuard().check(url)
    assert await AddressGuard.from_list(["10.0.0.0/8"]).check(url)


async def test_a_multicast_literal_is_refused():
    with pytest.raises(ApplicationError, match="non-public address"):
        await AddressGuard().check("http://224.0.0.251:5353/")
