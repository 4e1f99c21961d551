"""Watcher configuration and resource paths."""

from __future__ import annotations

from typing import Any

import pytest

from engine.watchers.change import Change
from engine.watchers.config import WatcherConfig
from engine.watchers.resource import Kind


async def ignore(change: Change) -> None:
    del change


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"resync_period": 0.0}, id="zero-resync"),
        pytest.param({"inactivity_limit": -1.0}, id="negative-inactivity"),
        pytest.param({"page_size": 0}, id="zero-page"),
        pytest.param({"watch_timeout_seconds": 0}, id="zero-watch-timeout"),
        pytest.param({"namespaces": ("a", "")}, id="empty-namespace"),
    ],
)
def test_config_refuses_nonsense(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must"):
        WatcherConfig(sink=ignore, **kwargs)


@pytest.mark.parametrize(
    ("kind", "namespace", "path"),
    [
        pytest.param(
            Kind("", "v1", "configmaps", "ConfigMap", namespaced=True),
            None,
            "/api/v1/configmaps",
            id="core-all",
        ),
        pytest.param(
            Kind("", "v1", "configmaps", "ConfigMap", namespaced=True),
            "ns",
            "/api/v1/namespaces/ns/configmaps",
            id="core-ns",
        ),
        pytest.param(
            Kind("apps", "v1", "deployments", "Deployment", namespaced=True),
            "ns",
            "/apis/apps/v1/namespaces/ns/deployments",
            id="group-ns",
        ),
        pytest.param(
            Kind("example.dev", "v1", "clusterthings", "ClusterThing", namespaced=False),
            "ns",
            "/apis/example.dev/v1/clusterthings",
            id="cluster-scoped-ignores-ns",
        ),
    ],
)
def test_collection_path(kind: Kind, namespace: str | None, path: str) -> None:
    assert kind.path(namespace) == path


def test_watched_kind_needs_a_plural() -> None:
    with pytest.raises(ValueError, match="plural"):
        Kind("", "v1", "", "ConfigMap", namespaced=True)
