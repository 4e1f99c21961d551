"""Effects: named async calls under idempotency keys, backoff, and replay mode."""
