"""Secret canaries (R16, S6): a unique value in a Site's `spec.password`, in a Secret of
the namespace and in the engine's environment (the OTLP exporter's auth header) must not
show up in anything the engine writes or sends: the journal's `.db`, `-wal` (copied
while the engine runs) and `-shm` bytes, every file of its state dir, its stdout and
stderr, every span the OTLP receiver got, every Event on the API server, the Sites'
status, and the `/metrics`, `/healthz` and `/readyz` bodies. The engine runs as
`engine run` against `engine apiserver`, driven with the real kubectl; a Site with a
reserved domain goes Failed so the error paths are exercised too.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.kubectl import URL_PATTERN, Kubectl, needs_kubectl
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan

pytestmark = [pytest.mark.e2e, needs_kubectl]

HEALTH = re.compile(r"health: (http://127\.0\.0\.1:\d+)/healthz")
SITE = """
apiVersion: example.dev/v1
kind: Site
metadata: {{name: {name}, namespace: default}}
spec: {{domain: {domain}, replicas: {replicas}, password: {password}}}
"""
SECRET = """
apiVersion: v1
kind: Secret
metadata: {{name: site-admin, namespace: default}}
stringData: {{password: {password}}}
"""


def canary(label: str) -> str:
    return f"canary{label}{uuid.uuid4().hex[:16]}"


def wait_for(what: str, check: Callable[[], object], log: Path, seconds: float = 40) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting: {what}\n{log.read_text()}"
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes], log: Path) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(timeout=30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@contextmanager
def apiserver(scratch: Path) -> Iterator[Kubectl]:
    kubeconfig, log = scratch / "kubeconfig", scratch / "apiserver.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine", "apiserver", "--db", str(scratch / "api.db"),
             "--port", "0", "--kubeconfig", str(kubeconfig),
             "--audit-log", str(scratch / "audit.jsonl")],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for("the API server", lambda: URL_PATTERN.search(log.read_text()), log)
        wait_for("its kubeconfig", kubeconfig.exists, log)
        yield Kubectl(kubeconfig, scratch / "kubectl-cache")
    finally:
        stop(process, log)


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
    return body


def span_texts(spans: list[ReceivedSpan]) -> list[str]:
    """Every string a span carries: names, attributes, events, links, status, resource."""
    texts: list[str] = []
    for span in spans:
        texts += [span.name, span.status_message, repr(span.attributes), repr(span.resource)]
        texts += [f"{event.name} {event.attributes!r}" for event in span.events]
        texts += [repr(link.attributes) for link in span.links]
    return texts


def status_of(kubectl: Kubectl, name: str) -> dict[str, object]:
    result = kubectl.run("get", f"site/{name}", "-o", "jsonpath={.status}")
    return json.loads(result.stdout) if result.code == 0 and result.stdout else {}


def test_no_canary_reaches_journal_spans_logs_events_status_metrics_or_health(
    tmp_path: Path,
) -> None:
    good_password, bad_password, new_password = canary("good"), canary("bad"), canary("new")
    secret_value, env_value = canary("secret"), canary("env")
    canaries = (good_password, bad_password, new_password, secret_value, env_value)
    state, out_log, err_log = tmp_path / "state", tmp_path / "engine.out", tmp_path / "engine.err"
    found: dict[str, bytes] = {}  # where -> the bytes searched
    with OtlpReceiver() as receiver, apiserver(tmp_path) as kubectl:
        kubectl.ok("apply", "-f", "-", stdin=SECRET.format(password=secret_value))
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.base_url,
            "OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer%20{env_value}",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "ENGINE_LOG_FORMAT": "json",
            "ENGINE_HEALTH_HOST": "127.0.0.1",
            "SITE_ADMIN_PASSWORD": env_value,
        }
        with out_log.open("wb") as out, err_log.open("wb") as err:
            engine = subprocess.Popen(
                [sys.executable, "-m", "engine", "run", "--kubeconfig", str(kubectl.kubeconfig),
                 "--state-dir", str(state), "--plain", "--health-port", "0"],
                stdout=out, stderr=err, env=env,
            )  # fmt: skip
        try:
            wait_for("the engine to serve", lambda: HEALTH.search(out_log.read_text()), out_log)
            match = HEALTH.search(out_log.read_text())
            assert match is not None
            health = match.group(1)
            site = SITE.format(name="good", domain="good.example.com", replicas=1,
                               password=good_password)  # fmt: skip
            kubectl.ok("apply", "-f", "-", stdin=site)
            bad = SITE.format(name="bad", domain="invalid.example", replicas=1,
                              password=bad_password)  # fmt: skip
            kubectl.ok("apply", "-f", "-", stdin=bad)
            wait_for("good Ready", lambda: status_of(kubectl, "good").get("phase") == "Ready",
                     out_log)  # fmt: skip
            wait_for("bad Failed", lambda: status_of(kubectl, "bad").get("phase") == "Failed",
                     out_log)  # fmt: skip
            assert "reserved" in json.dumps(status_of(kubectl, "bad"))
            patch = {"spec": {"replicas": 2, "password": new_password}}
            kubectl.ok("patch", "site/good", "--type=merge", "-p", json.dumps(patch))
            wait_for(
                "good Ready at generation 2",
                lambda: (
                    status_of(kubectl, "good").get("observedGeneration") == 2
                    and status_of(kubectl, "good").get("phase") == "Ready"
                ),
                out_log,
            )
            site_json = kubectl.ok("get", "site/good", "-o", "json")
            wal = state / "journal.db-wal"
            assert wal.exists(), "the journal has no -wal while the engine runs"
            found["journal -wal (running)"] = wal.read_bytes()
            for name in ("good", "bad"):
                found[f"status of {name}"] = json.dumps(status_of(kubectl, name)).encode()
            events = kubectl.ok("get", "events", "-A", "-o", "json")
            assert json.loads(events)["items"], "the engine recorded no Event"
            found["Events"] = events.encode()
            for path in ("/metrics", "/healthz", "/readyz"):
                found[path] = get(health + path)
            assert b"engine_reconciles_total" in found["/metrics"]
            kubectl.ok("delete", "site/good", "site/bad", "--timeout=30s")
            found["Events after delete"] = kubectl.ok("get", "events", "-A", "-o", "json").encode()
        finally:
            stop(engine, err_log)
        spans = receiver.wait_for_spans(1)
        found["spans"] = "\n".join(span_texts(spans)).encode()
    for path in sorted(p for p in state.rglob("*") if p.is_file()):
        found[f"state file {path.relative_to(state)}"] = path.read_bytes()
    found["engine stdout"], found["engine stderr"] = out_log.read_bytes(), err_log.read_bytes()
    assert any(span.name.startswith("reconcile") for span in spans)
    log_lines = (state / "engine.log").read_text().splitlines()
    assert log_lines
    assert all(json.loads(line)["level"] for line in log_lines)

    leaks = [
        f"{value[:12]}… in {where}"
        for where, body in found.items()
        for value in canaries
        if value.encode() in body
    ]
    assert not leaks, leaks
    journal = found["state file journal.db"] + found["journal -wal (running)"]
    assert b"<redacted>" in journal, "no password was observed and redacted"
    # the search itself works: the canary is where it legitimately lives, the Site
    assert new_password in site_json
