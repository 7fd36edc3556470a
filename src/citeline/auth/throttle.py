"""Sign-in throttling that slows a password guesser without locking out the account's owner.

Failures are counted per (account, client address) pair: from the `free`-th failure on, each
further attempt from that pair must wait, twice as long after every failure (up to
`max_delay`). The
owner signing in from another address is not slowed by an attack from elsewhere.

Two wider counters catch attacks spread over many addresses (one account) or many accounts
(one address, as when every user comes through one proxy). They slow only pairs that have
never signed in successfully (an address that has signed in to an account is remembered for
30 days), and their delay is capped low, so they cannot lock out the people already using
the instance.

The client address is the peer's, or the one a trusted proxy reports (see `client_address`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from citeline.errors import RateLimited, ServiceUnavailable

PREFIX = "citeline:sign-in"
WINDOW_SECONDS = 15 * 60
KNOWN_SECONDS = 30 * 86400
WIDE_FACTOR = 4  # an account or an address gets this many times the pair's free failures
WIDE_MAX_DELAY = 30.0  # seconds; a shared counter never slows anyone for longer


@dataclass(frozen=True)
class ThrottlePolicy:
    free: int = 5  # failures per pair before any delay
    base_delay: float = 1.0  # seconds after the first failure beyond `free`
    max_delay: float = 900.0


def delay_after(excess: int, base: float, cap: float) -> float:
    """The wait after `excess` failures beyond the free ones: base, 2 base, 4 base, ..."""
    if excess <= 0:
        return 0.0
    return float(min(cap, base * 2.0 ** min(excess - 1, 30)))


class SignInThrottle:
    def __init__(self, connection: redis.Redis, policy: ThrottlePolicy) -> None:
        self.redis = connection
        self.policy = policy

    def check(self, email: str, client: str) -> None:
        """Refuse with the time to wait while this pair (or, for a pair never seen to sign
        in, its account or address) is slowed down."""
        pair, account, address, known = self._keys(email, client)
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hget(pair, "next_at")
            pipe.hget(account, "next_at")
            pipe.hget(address, "next_at")
            pipe.exists(known)
            pair_at, account_at, address_at, is_known = pipe.execute()
        except redis.RedisError as exc:
            raise ServiceUnavailable(f"sign-in is unavailable: {exc}") from exc
        waits = [_wait(pair_at)]
        if not is_known:
            waits += [_wait(account_at), _wait(address_at)]
        wait = max(waits)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise RateLimited(
                f"too many failed sign-ins for this account from this address; "
                f"try again in {seconds} s",
                retry_after=seconds,
                limit=self.policy.free,
                reset=seconds,
            )

    def failed(self, email: str, client: str) -> None:
        pair, account, address, _ = self._keys(email, client)
        policy = self.policy
        wide_free = policy.free * WIDE_FACTOR
        counts = self._count(pair, account, address)
        now = time.time()
        # The `free`-th failure already makes the next attempt wait.
        delays = {
            pair: delay_after(counts[0] - policy.free + 1, policy.base_delay, policy.max_delay),
            account: delay_after(counts[1] - wide_free + 1, policy.base_delay, WIDE_MAX_DELAY),
            address: delay_after(counts[2] - wide_free + 1, policy.base_delay, WIDE_MAX_DELAY),
        }
        pipe = self.redis.pipeline(transaction=False)
        for key, delay in delays.items():
            if delay > 0:
                pipe.hset(key, "next_at", f"{now + delay:.3f}")
        pipe.execute()

    def succeeded(self, email: str, client: str) -> None:
        pair, _, _, known = self._keys(email, client)
        pipe = self.redis.pipeline(transaction=False)
        pipe.delete(pair)
        pipe.set(known, 1, ex=KNOWN_SECONDS)
        pipe.execute()

    def _count(self, *keys: str) -> list[int]:
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.hincrby(key, "failures", 1)
            pipe.expire(key, WINDOW_SECONDS)
        results = pipe.execute()
        return [int(results[i * 2]) for i in range(len(keys))]

    def _keys(self, email: str, client: str) -> tuple[str, str, str, str]:
        account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
        return (
            f"{PREFIX}:pair:{account}:{client}",
            f"{PREFIX}:account:{account}",
            f"{PREFIX}:client:{client}",
            f"{PREFIX}:known:{account}:{client}",
        )


def _wait(next_at: bytes | None) -> float:
    if next_at is None:
        return 0.0
    return max(0.0, float(next_at) - time.time())


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks(entries: Sequence[str]) -> list[Network]:
    return [ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry]


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy, in which case the
    right-most address in `X-Forwarded-For` that is not itself a trusted proxy."""
    if peer is None:
        return "unknown"
    if not trusted or not _in(peer, trusted) or not forwarded_for:
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _valid(hop):
            return peer  # a garbled header says nothing trustworthy
        if not _in(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _valid(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _in(text: str, networks: Sequence[Network]) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return any(address in network for network in networks)
