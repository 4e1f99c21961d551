"""The running engine, in four layers (import-linter holds them): `queue` (per-key work
queue, limits, workers) < `reconcile` (one turn of one key over narrow ports) <
`supervision` (the watchdog) < `manager` (the composition root, watches, health,
settings). docs/architecture.md draws them."""
