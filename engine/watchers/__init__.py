"""List + watch of the cluster with kubernetes-asyncio; every change handed to a sink that
journals it before anything acts on it.

Public surface: `connect_kubeconfig` / `connect_in_cluster` → an `ApiClient`;
`KubeResources(api_client)`; `Kind`; `WatcherConfig(sink=…)`;
`Watcher(kind, resources, config)` with `run()`, `synced`, `cache`, `last_event_monotonic`,
`restarts`; the sink receives a `Change`.
"""

from engine.watchers.backoff import BackoffPolicy, retry_after_seconds
from engine.watchers.cache import ObjectCache, ObjectKey, object_key
from engine.watchers.change import CacheView, Change, ChangeOrigin, ChangeType, Sink
from engine.watchers.client import (
    ApiStatusError,
    ClusterConfigError,
    ClusterUnreachableError,
    KubeResources,
    TransportError,
    connect_in_cluster,
    connect_kubeconfig,
    server_answers,
)
from engine.watchers.config import RestartHook, WatcherConfig
from engine.watchers.resource import Kind
from engine.watchers.watch_state import RestartReason
from engine.watchers.watcher import ALL_NAMESPACES, Watcher

__all__ = [
    "ALL_NAMESPACES",
    "ApiStatusError",
    "BackoffPolicy",
    "CacheView",
    "Change",
    "ChangeOrigin",
    "ChangeType",
    "ClusterConfigError",
    "ClusterUnreachableError",
    "Kind",
    "KubeResources",
    "ObjectCache",
    "ObjectKey",
    "RestartHook",
    "RestartReason",
    "Sink",
    "TransportError",
    "Watcher",
    "WatcherConfig",
    "connect_in_cluster",
    "connect_kubeconfig",
    "object_key",
    "retry_after_seconds",
    "server_answers",
]
