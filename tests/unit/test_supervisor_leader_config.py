"""Leader election settings are checked when they are made."""

from __future__ import annotations

import pytest

from engine.supervisor.leader import LeaderElectionConfig, default_identity


def make(**timings: float) -> LeaderElectionConfig:
    return LeaderElectionConfig(name="engine-leader", namespace="default", identity="a", **timings)


def test_the_defaults_are_client_go_s() -> None:
    config = make()
    assert (config.lease_duration, config.renew_deadline, config.retry_period) == (15, 10, 2)
    assert config.release_on_cancel


def test_test_scaled_timings_below_one_second_are_accepted() -> None:
    config = make(lease_duration=1.5, renew_deadline=1.0, retry_period=0.2)
    assert config.retry_period == 0.2


@pytest.mark.parametrize(
    "timings",
    [
        pytest.param({"lease_duration": 10.0}, id="lease-not-above-renew-deadline"),
        pytest.param({"renew_deadline": 2.0}, id="renew-deadline-not-above-retry"),
        pytest.param({"retry_period": 0.0}, id="zero-retry"),
    ],
)
def test_timings_out_of_order_are_refused_naming_the_rule(timings: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="lease_duration > renew_deadline > retry_period > 0"):
        make(**timings)


@pytest.mark.parametrize("missing", ["name", "namespace", "identity"])
def test_a_lease_needs_a_name_namespace_and_identity(missing: str) -> None:
    values = {"name": "engine-leader", "namespace": "default", "identity": "a", missing: ""}
    with pytest.raises(ValueError, match="name, a namespace and an identity"):
        LeaderElectionConfig(**values)


def test_default_identities_differ_per_call() -> None:
    assert default_identity() != default_identity()
