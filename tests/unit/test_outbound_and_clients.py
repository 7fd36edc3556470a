"""Where Citeline may send requests (no internal addresses unless allowed), and who the client
is behind a proxy (only trusted proxies are believed)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from citeline.auth.throttle import client_address, delay_after, trusted_networks
from citeline.errors import InvalidInput
from citeline.outbound import check_url


def resolver(table: dict[str, list[str]]) -> Callable[[str], list[str]]:
    def resolve(host: str) -> list[str]:
        if host not in table:
            raise InvalidInput(f"the host {host!r} does not resolve")
        return table[host]

    return resolve


DNS = resolver(
    {
        "api.example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
        "sneaky.example.com": ["93.184.215.14", "10.0.0.7"],
        "metadata.internal": ["169.254.169.254"],
        "vllm.cluster.local": ["10.3.0.12"],
        "127.0.0.1": ["127.0.0.1"],
        "::ffff:127.0.0.1": ["::ffff:127.0.0.1"],
        "100.64.1.1": ["100.64.1.1"],
    }
)


@pytest.mark.parametrize("url", ["https://api.example.com/v1", "http://api.example.com:8080"])
def test_public_hosts_are_allowed(url: str) -> None:
    check_url(url, [], field="base_url", resolver=DNS)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:6379/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://metadata.internal/latest", "link-local"),
        ("http://vllm.cluster.local:8000/v1", "private"),
        ("http://sneaky.example.com/", "private"),  # any one internal address is enough
        ("http://100.64.1.1/", "not a public address"),
    ],
)
def test_internal_addresses_are_refused_with_the_reason(url: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why) as refused:
        check_url(url, [], field="base_url", resolver=DNS)
    assert refused.value.field == "base_url"
    assert "CITELINE_OUTBOUND_ALLOWED_HOSTS" in refused.value.detail


def test_an_operator_may_allow_a_host_or_a_network() -> None:
    check_url("http://vllm.cluster.local:8000/v1", ["vllm.cluster.local"], field="u", resolver=DNS)
    check_url("http://vllm.cluster.local:8000/v1", ["10.3.0.0/16"], field="u", resolver=DNS)
    check_url("http://127.0.0.1:9000", ["127.0.0.1"], field="u", resolver=DNS)
    with pytest.raises(InvalidInput):
        check_url("http://vllm.cluster.local/", ["10.4.0.0/16"], field="u", resolver=DNS)


@pytest.mark.parametrize("url", ["ftp://api.example.com/", "file:///etc/passwd", "http://", "x"])
def test_only_http_urls_with_a_host(url: str) -> None:
    with pytest.raises(InvalidInput, match="http"):
        check_url(url, [], field="url", resolver=DNS)


def test_an_unresolvable_host_is_refused() -> None:
    with pytest.raises(InvalidInput, match="does not resolve"):
        check_url("http://nowhere.invalid/", [], field="url", resolver=DNS)


PROXIES = trusted_networks(["127.0.0.1", "10.0.0.0/8"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.5", "198.51.100.1", "203.0.113.5"),  # not a proxy: its header is ignored
        ("127.0.0.1", "198.51.100.1", "198.51.100.1"),
        ("127.0.0.1", "198.51.100.1, 10.1.1.1", "198.51.100.1"),  # through two proxies
        ("127.0.0.1", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # a forged left-most hop
        ("127.0.0.1", None, "127.0.0.1"),
        ("127.0.0.1", "not-an-address", "127.0.0.1"),
        (None, None, "unknown"),
    ],
)
def test_the_client_address_believes_only_trusted_proxies(
    peer: str | None, forwarded: str | None, client: str
) -> None:
    assert client_address(peer, forwarded, PROXIES) == client


def test_sign_in_delays_double_up_to_the_cap() -> None:
    assert [delay_after(n, 1.0, 900.0) for n in range(0, 5)] == [0.0, 1.0, 2.0, 4.0, 8.0]
    assert delay_after(40, 1.0, 900.0) == 900.0
