"""The embedded, SQLite-backed, Kubernetes-compatible API server (a separate program)."""
