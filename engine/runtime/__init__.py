"""The reconcile runtime: work queue, reconciler, operator API, health endpoints."""
