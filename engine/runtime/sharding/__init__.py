"""Sharded active replicas: members, shard Leases with their own terms, the key filter."""
