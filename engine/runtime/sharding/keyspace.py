"""The key space split into a fixed number of shards, and which live member owns each.

Pure. A key (`namespace/name`) belongs to shard `sha256(key) mod count`. Shards are
assigned by rendezvous hashing with bounded loads: the (shard, member) pairs are taken
in the order of their weight `sha256(shard|member)`, highest first, and a shard goes to
the member of its pair unless it is taken or the member is full; every member holds
`count // N` or one more of them (with plain rendezvous hashing, 6 shards over 3
members leave one of them without any about one time in four). When a member joins or
leaves, mostly the shards it wins or held move, and a few more to keep the balance.
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
    """shard → the member that should hold it, for every shard (None without members):
    each member holds `count // N` or `count // N + 1` shards."""
    live = sorted(set(members))
    shards = shard_names(count)
    if not live:
        return dict.fromkeys(shards)
    floor, extra = divmod(count, len(live))
    pairs = sorted(
        ((_weight(f"{shard}|{member}"), shard, member) for shard in shards for member in live),
        reverse=True,
    )
    owners: dict[str, str | None] = {}
    held = dict.fromkeys(live, 0)
    for _, shard, member in pairs:
        if shard in owners or held[member] > floor:
            continue
        if held[member] == floor:
            if not extra:
                continue
            extra -= 1
        owners[shard] = member
        held[member] += 1
    return {shard: owners.get(shard) for shard in shards}
