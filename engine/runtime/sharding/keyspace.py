"""The key space split into a fixed number of shards, and which live member owns each.

Pure. A key (`namespace/name`) belongs to shard `sha256(key) mod count`; a shard is
owned by the live member with the highest rendezvous weight `sha256(shard|member)`, so
when a member joins or leaves only the shards it wins or held move (about 1/N of them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping


def _weight(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def shard_name(index: int) -> str:
    """`shard-07`: the name of shard `index` (its Lease is `<prefix>-shard-07`)."""
    return f"shard-{index:02d}"


def shard_names(count: int) -> tuple[str, ...]:
    """Every shard of a key space of `count` shards, in order.

    Errors: `ValueError` unless `count >= 1`."""
    if count < 1:
        raise ValueError(f"the number of shards must be >= 1, got {count}")
    return tuple(shard_name(i) for i in range(count))


def shard_of(key: str, count: int) -> str:
    """The shard of `key` (`namespace/name`) among `count` shards."""
    return shard_name(_weight(key) % count)


def owner_of(shard: str, members: Iterable[str]) -> str | None:
    """The member that should hold `shard` (rendezvous hashing); None without members."""
    best: tuple[int, str] | None = None
    for member in members:
        candidate = (_weight(f"{shard}|{member}"), member)
        if best is None or candidate > best:
            best = candidate
    return None if best is None else best[1]


def assignment(count: int, members: Iterable[str]) -> Mapping[str, str | None]:
    """shard → the member that should hold it, for every shard."""
    live = sorted(set(members))
    return {shard: owner_of(shard, live) for shard in shard_names(count)}
