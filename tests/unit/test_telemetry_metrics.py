"""EngineMetrics: every metric on its own registry, rendered in Prometheus text format."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from engine.telemetry import EngineMetrics

EXPECTED = {
    "engine_reconcile_duration_seconds",
    "engine_reconciles",
    "engine_workqueue_depth",
    "engine_workqueue_oldest_item_age_seconds",
    "engine_retries",
    "engine_resources",
    "engine_stuck_resources",
    "engine_deadlocked_resources",
    "engine_journal_append_duration_seconds",
    "engine_journal_size_bytes",
    "engine_journal_records",
    "engine_watch_restarts",
    "engine_spans_dropped",
    "engine_event_loop_lag_seconds",
    "engine_stream_history_warnings",
    "engine_stream_history_records_max",
    "engine_journal_quarantined",
    "engine_webhook_requests",
    "engine_webhook_duration_seconds",
}


def samples(metrics: EngineMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def exercised() -> EngineMetrics:
    metrics = EngineMetrics()
    metrics.observe_reconcile("Widget", "converged", 0.02)
    metrics.observe_reconcile("Widget", "converged", 0.3)
    metrics.set_queue(depth=4, oldest_age_s=1.5)
    metrics.count_retry("Widget", "CreateDeployment")
    metrics.set_resources_per_state({"Ready": 3, "Provisioning": 1})
    metrics.set_stuck(1)
    metrics.set_deadlocked(2)
    metrics.observe_journal_append(0.001)
    metrics.set_journal_size(size_bytes=4096, records=17)
    metrics.count_watch_restart("Widget", "gone")
    metrics.count_spans_dropped("queue_full", 5)
    return metrics


def test_the_rendered_registry_names_every_metric() -> None:
    text = exercised().render().decode()
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {name for name in names if not name.endswith("_created")} == EXPECTED


def test_methods_record_the_values_the_runtime_reports() -> None:
    got = samples(exercised())
    kind_outcome = (("kind", "Widget"), ("outcome", "converged"))
    assert got[("engine_reconciles_total", kind_outcome)] == 2
    assert got[("engine_reconcile_duration_seconds_count", kind_outcome)] == 2
    bucket = (("kind", "Widget"), ("le", "0.025"), ("outcome", "converged"))
    assert got[("engine_reconcile_duration_seconds_bucket", bucket)] == 1
    assert got[("engine_workqueue_depth", ())] == 4
    assert got[("engine_workqueue_oldest_item_age_seconds", ())] == 1.5
    assert got[("engine_resources", (("state", "Ready"),))] == 3
    assert got[("engine_journal_records", ())] == 17
    assert got[("engine_watch_restarts_total", (("kind", "Widget"), ("reason", "gone")))] == 1
    assert got[("engine_spans_dropped_total", (("reason", "queue_full"),))] == 5


def test_a_state_that_empties_reads_zero_rather_than_its_last_count() -> None:
    metrics = EngineMetrics()
    metrics.set_resources_per_state({"Provisioning": 2})
    metrics.set_resources_per_state({"Ready": 2})
    got = samples(metrics)
    assert got[("engine_resources", (("state", "Provisioning"),))] == 0
    assert got[("engine_resources", (("state", "Ready"),))] == 2


def test_an_empty_queue_has_no_oldest_item_age() -> None:
    metrics = EngineMetrics()
    metrics.set_queue(depth=0, oldest_age_s=9.0)
    assert samples(metrics)[("engine_workqueue_oldest_item_age_seconds", ())] == 0


def test_two_instances_share_nothing() -> None:
    first, second = EngineMetrics(), EngineMetrics()
    first.count_retry("Widget", "E")
    assert ("engine_retries_total", (("effect", "E"), ("kind", "Widget"))) in samples(first)
    assert not any(name == "engine_retries_total" for name, _ in samples(second))
