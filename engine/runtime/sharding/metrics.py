"""Per-shard Prometheus metrics of a sharded replica, on the engine's registry."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge


class ShardMetrics:
    """`engine_shards_owned`, `engine_shard_handoffs_total{shard,direction}` (acquired,
    released, lost), `engine_shard_term{shard}` and `engine_shard_keys{shard}` (the keys
    of each owned shard in this replica's cache)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self._owned = Gauge("engine_shards_owned", "Shards this replica holds.", registry=r)
        self._handoffs = Counter(
            "engine_shard_handoffs",
            "Shard acquisitions, releases and losses of this replica.",
            ("shard", "direction"),
            registry=r,
        )
        self._term = Gauge(
            "engine_shard_term", "The term this replica holds a shard with.", ("shard",), registry=r
        )
        self._keys = Gauge(
            "engine_shard_keys", "Keys of each owned shard in the cache.", ("shard",), registry=r
        )

    def count_handoff(self, shard: str, direction: str) -> None:
        self._handoffs.labels(shard=shard, direction=direction).inc()

    def set_owned(self, terms: Mapping[str, int], all_shards: Iterable[str]) -> None:
        self._owned.set(len(terms))
        for shard in all_shards:
            self._term.labels(shard=shard).set(terms.get(shard, 0))

    def set_keys(self, counts: Mapping[str, int], all_shards: Iterable[str]) -> None:
        for shard in all_shards:
            self._keys.labels(shard=shard).set(counts.get(shard, 0))
