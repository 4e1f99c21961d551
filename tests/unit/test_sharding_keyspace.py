"""The key space: keys spread over the shards, every member holds its share, a joining
or leaving member moves mostly the shards it wins or held, and the work queue admits
only held keys."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from engine.runtime.queue.work_queue import WorkQueue
from engine.runtime.sharding.keyspace import assignment, owner_of, shard_names, shard_of
from engine.runtime.sharding.members import member_lease_name, shard_lease_name

KEYS = [f"default/chore-{i:05d}" for i in range(4000)]


def test_keys_spread_evenly_and_stably_over_the_shards() -> None:
    counts = Counter(shard_of(key, 16) for key in KEYS)
    assert set(counts) == set(shard_names(16))
    assert max(counts.values()) < 1.25 * len(KEYS) / 16
    assert [shard_of(key, 16) for key in KEYS[:50]] == [shard_of(key, 16) for key in KEYS[:50]]


def test_a_joining_member_takes_shards_mostly_from_the_others_and_a_leaver_gives_its_own() -> None:
    three = assignment(64, ["a", "b", "c"])
    four = assignment(64, ["a", "b", "c", "d"])
    moved = {shard for shard in three if three[shard] != four[shard]}
    assert sum(four[shard] == "d" for shard in moved) == 16, "d wins its share"
    assert len(moved) <= 16 + 4, "a few more move to keep the balance"
    two = assignment(64, ["a", "c"])
    kept = [s for s in three if three[s] != "b"]
    assert sum(two[s] == three[s] for s in kept) >= len(kept) - 2, "mostly b's shards move"


def test_every_member_holds_its_share_of_the_shards() -> None:
    for count, members in ((6, 3), (16, 3), (16, 5), (64, 4), (3, 5)):
        for seed in range(50):
            live = [f"host_{seed}_{m}" for m in range(members)]
            held = Counter(owner for owner in assignment(count, live).values() if owner)
            assert sum(held.values()) == count
            lowest = min(held.get(member, 0) for member in live)
            assert max(held.values()) - lowest <= 1, (count, live, held)


def test_no_members_own_nothing_and_the_count_must_be_positive() -> None:
    assert owner_of("shard-00", []) is None
    with pytest.raises(ValueError, match="number of shards"):
        shard_names(0)


def test_lease_names_are_valid_object_names() -> None:
    name = member_lease_name("engine", "Host_Name_ab12")
    assert name.startswith("engine-member-")
    assert name == name.lower()
    assert "_" not in name
    assert shard_lease_name("engine", "shard-07") == "engine-shard-07"


async def test_the_queue_admits_only_accepted_keys_and_drops_those_refused_since() -> None:
    held = {"a", "b"}
    queue = WorkQueue(accepts=lambda key: key in held)
    for key in ("a", "b", "c"):
        queue.add(key)
    assert len(queue) == 2, "c is not queued"
    held.discard("a")  # a's shard handed off while a waits
    assert await asyncio.wait_for(queue.get(), 1) == "b"
    assert len(queue) == 0
    queue.done("b")
