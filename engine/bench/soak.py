"""`engine bench soak`: a create/update/delete workload of Sites with the engine killed
by SIGKILL at random moments, iteration after iteration, every history check after each.

The API server (`engine apiserver`), the example registry (`engine example-service`) and
the engine (`engine run --kubeconfig …`) are child processes. Each iteration: the engine
starts on the journal the last one left, the workload changes (a few creates, spec
updates and deletes), the engine is killed at a random moment, its journal is read as the
kill left it, the engine starts again and runs until the workload converged (or the
timeout), and stops. Then the checks, each counted in its own figure:

- `lost_records`: records present in the journal as the kill left it that the journal no
  longer holds, or holds changed (same position, other checksum) (R1);
- `duplicate_successes`: idempotency keys with more than one recorded success, plus keys
  the registry (the effect target, as oracle) applied more than once (R3);
- `unobserved_effects`: keys the registry applied that the journal never records as
  succeeded once the workload converged (R3: observed exactly once);
- `overlapping_turns`: effect outcomes that do not belong to the attempt started last in
  their stream, which two turns of one key at once would cause (R6);
- `unconverged`: resources still differing from the desired state at the timeout (R12);
- `verify_failures`: the journal check (quick_check, checksums, chain head) failing, or a
  replay through the live loop (`engine replay --verify`) diverging from the journal or
  not finishing (R2, R11); the journal of an iteration whose verify failed is kept as
  an export (`engine journal export`), with the engine's output, in the `keep_failed`
  directory (by default a new directory under the system's temporary one), and the
  problem names the file;
- `canary_hits`: files of the state dir (journal, `-wal`, `-shm`) or lines of the
  engine's output holding the password every Site carries in its secret field (R16).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp

from engine.bench.process import stop_process
from engine.effects.install import Collection
from engine.example.site import registration_payload
from engine.example.site_resource import SITE
from engine.fsm import events as ev
from engine.journal.chain_check import check_journal
from engine.journal.errors import JournalError
from engine.journal.sqlite import SqliteJournal

URL_PATTERN = re.compile(r"http://127\.0\.0\.1:\d+")
CONNECTED = "example registry at"
"""What `engine run` prints once it reached the API server (its imports done)."""
NAMESPACE = "default"
SITES = Collection(SITE.group, SITE.version, SITE.plural)
BACKOFF_CAP_SECONDS = 1.0
ENGINE_ENV = {
    "PYTHONUNBUFFERED": "1",
    "OTEL_SDK_DISABLED": "true",
    "OTEL_TRACES_EXPORTER": "none",
    "ENGINE_HEALTH_HOST": "127.0.0.1",
    "ENGINE_BACKOFF_CAP_SECONDS": f"{BACKOFF_CAP_SECONDS:g}",
    "ENGINE_MAX_CONCURRENT_RECONCILES": "8",
}
WORDS = ("hello", "bonjour", "hola", "ciao", "hallo", "salut", "hej", "ahoj")
CONCURRENCY = 16
START_WITHIN_SECONDS = 180.0
"""How long a start may take to reach the API server (imports on a loaded machine)."""


class SoakError(Exception):
    """The soak could not run (a child process did not start, the API refused a write)."""


@dataclass(frozen=True)
class SoakFigures:
    """Counts over every iteration (0 is the target for all but the first three)."""

    iterations: int
    resources: int
    seconds: float
    kills: int
    lost_records: int
    duplicate_successes: int
    unobserved_effects: int
    overlapping_turns: int
    canary_hits: int
    verify_failures: int
    unconverged: int
    records: int
    registry_calls: int
    problems: tuple[str, ...] = ()
    """The first violations found, described (at most 20)."""

    def as_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def describe(self) -> str:
        lines = [
            f"{name:<20} {value}" for name, value in asdict(self).items() if name != "problems"
        ]
        return "\n".join(lines + [f"problem: {p}" for p in self.problems])


@dataclass
class _Totals:
    kills: int = 0
    lost_records: int = 0
    duplicate_successes: int = 0
    unobserved_effects: int = 0
    overlapping_turns: int = 0
    canary_hits: int = 0
    verify_failures: int = 0
    unconverged: int = 0
    problems: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def add(self, figure: str, found: Sequence[str]) -> None:
        """Count the violations of `figure` not counted before (the checks run over the
        whole history after every iteration: one violation is counted once)."""
        new = [f"{figure}: {p}" for p in found if f"{figure}: {p}" not in self.seen]
        self.seen.update(new)
        setattr(self, figure, getattr(self, figure) + len(new))
        self.problems += new[: max(0, 20 - len(self.problems))]


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


@contextlib.asynccontextmanager
async def _child(args: Sequence[str], log_path: Path) -> AsyncIterator[str]:
    """`python -m engine <args>` as a child process; yields the URL it prints."""
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "engine", *args, stdout=log, stderr=asyncio.subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 30
        while not (found := URL_PATTERN.search(_read(log_path))):
            if process.returncode is not None or time.monotonic() > deadline:
                raise SoakError(f"`engine {args[0]}` did not start: {_read(log_path)[-1000:]}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), timeout=0.05)
        yield found.group(0)
    finally:
        await stop_process(process)


@dataclass
class _Engine:
    """`engine run` on one state dir, restarted as often as needed; output in one log."""

    state_dir: Path
    kubeconfig: Path
    registry_url: str
    process: asyncio.subprocess.Process | None = None
    log_offset: int = 0

    @property
    def journal(self) -> Path:
        return self.state_dir / "journal.db"

    @property
    def log(self) -> Path:
        return self.state_dir.parent / "engine.out"

    async def start(self) -> None:
        self.log_offset = self.log.stat().st_size if self.log.exists() else 0
        args = ("run", "--kubeconfig", str(self.kubeconfig), "--state-dir", str(self.state_dir),
                "--registry-url", self.registry_url, "--plain", "--health-port", "0")  # fmt: skip
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "engine", *args, env={**os.environ, **ENGINE_ENV},
                stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip

    def output(self) -> str:
        with self.log.open("rb") as log:
            log.seek(self.log_offset)
            return log.read().decode(errors="replace")

    async def kill(self) -> None:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None:
            await stop_process(self.process)


@dataclass
class _Workload:
    """The desired state (`live` specs, `deleted` names) and the writes that make it."""

    session: aiohttp.ClientSession
    rng: random.Random
    password: str
    live: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    created: int = 0

    def _spec(self, name: str) -> dict[str, Any]:
        return {"domain": f"{name}.example.com", "replicas": self.rng.randint(1, 3),
                "message": self.rng.choice(WORDS), "password": self.password}  # fmt: skip

    async def _send(self, method: str, path: str, body: Any, ok: tuple[int, ...]) -> None:
        headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {}
        for _ in range(100):
            async with self.session.request(method, path, json=body, headers=headers) as answer:
                if answer.status in ok:
                    return
                if answer.status not in (404, 409, 429, 500, 503):
                    raise SoakError(f"{method} {path}: {answer.status} {await answer.text()}")
            await asyncio.sleep(0.05)
        raise SoakError(f"{method} {path} never accepted")

    async def create(self, count: int) -> None:
        names = [f"soak-{n:04d}" for n in range(self.created, self.created + count)]
        self.created += count
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(name: str) -> None:
            spec = self._spec(name)
            body = {"apiVersion": SITE.api_version, "kind": SITE.kind,
                    "metadata": {"name": name, "namespace": NAMESPACE}, "spec": spec}  # fmt: skip
            async with gate:
                await self._send("POST", SITES.path(NAMESPACE), body, (201, 409))
            self.live[name] = spec

        await asyncio.gather(*(one(name) for name in names))

    async def churn(self, *, creates: int, updates: int, deletes: int) -> None:
        chosen = self.rng.sample(sorted(self.live), min(len(self.live), updates + deletes))
        for name in chosen[:updates]:
            spec = {
                **self.live[name],
                "message": self.rng.choice(WORDS) + f"-{self.rng.random():.6f}",
            }
            await self._send("PATCH", f"{SITES.path(NAMESPACE)}/{name}", {"spec": spec}, (200,))
            self.live[name] = spec
        for name in chosen[updates:]:
            await self._send("DELETE", f"{SITES.path(NAMESPACE)}/{name}", None, (200, 202, 404))
            del self.live[name]
            self.deleted.add(name)
        await self.create(creates)

    async def divergences(self, registry_url: str) -> list[str]:
        """Every way the cluster and the registry differ from the desired state."""
        async with self.session.get(SITES.path(NAMESPACE)) as answer:
            sites = {i["metadata"]["name"]: i for i in (await answer.json())["items"]}
        async with self.session.get(f"/api/v1/namespaces/{NAMESPACE}/configmaps") as answer:
            configmaps = Counter(
                (i["metadata"].get("labels") or {}).get("app.kubernetes.io/instance")
                for i in (await answer.json())["items"]
            )
        async with self.session.get(registry_url + "/registrations") as answer:
            registered = {i["name"]: i["spec"] for i in (await answer.json())["items"]}
        problems = []
        for name, spec in sorted(self.live.items()):
            site = sites.get(name)
            status = (site or {}).get("status") or {}
            if site is None:
                problems.append(f"{name}: missing")
            elif status.get("phase") != "Ready":
                problems.append(f"{name}: phase {status.get('phase')}")
            elif status.get("observedGeneration") != site["metadata"].get("generation"):
                problems.append(f"{name}: observedGeneration {status.get('observedGeneration')}")
            elif configmaps[name] != 1:
                problems.append(f"{name}: {configmaps[name]} ConfigMaps")
            elif registered.get(f"{NAMESPACE}.{name}") != registration_payload(spec):
                problems.append(f"{name}: registered {registered.get(f'{NAMESPACE}.{name}')}")
        for name in sorted(self.deleted):
            if name in sites or configmaps[name] or f"{NAMESPACE}.{name}" in registered:
                problems.append(f"{name}: deleted but still there")
        return problems


@dataclass(frozen=True, slots=True)
class Row:
    """A journal record, as much of it as the checks need."""

    position: int
    checksum: str
    stream: str
    type: str
    key: str | None


async def read_rows(journal: Path) -> list[Row]:
    """Every record of the journal, in order, as much as the checks need."""
    opened = await SqliteJournal.open(journal, readonly=True)
    try:
        return [
            Row(r.position, r.checksum, r.stream, r.type, r.data.get("key"))
            async for r in opened.read_all()
        ]
    finally:
        await opened.close()


def _journal_at_kill(journal: Path, into: Path) -> Path | None:
    """A copy of the journal and its WAL as the kill left them (None: none yet)."""
    if not journal.exists():
        return None
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(parents=True)
    for suffix in ("", "-wal"):
        source = journal.with_name(journal.name + suffix)
        if source.exists():
            shutil.copyfile(source, into / (journal.name + suffix))
    return into / journal.name


def _lost(at_kill: Sequence[Row], now: Sequence[Row]) -> list[str]:
    """(R1) Records of the journal as the kill left it missing or changed since."""
    kept = {row.position: row.checksum for row in now}
    return [
        f"position {row.position} ({row.type}) {'changed' if row.position in kept else 'lost'}"
        for row in at_kill
        if kept.get(row.position) != row.checksum
    ]


def interleaved_outcomes(rows: Sequence[Row]) -> list[str]:
    """(R6) Effect outcomes out of turn. In one stream a turn's effects nest (the handler
    run is an effect, its steps effects inside it) and run one after another, so the
    attempts started form a stack and every outcome ends the top one. A kill leaves
    attempts open; the next attempt of a key still open reruns it (the stack is cut back
    to below it). Two turns of one key at once would end an attempt that is not on top.
    """
    open_attempts: dict[str, list[str | None]] = {}
    problems = []
    for row in rows:
        stack = open_attempts.setdefault(row.stream, [])
        if row.type == ev.EFFECT_STARTED:
            if row.key in stack:
                del stack[stack.index(row.key) :]
            stack.append(row.key)
        elif row.type in (ev.EFFECT_SUCCEEDED, ev.EFFECT_FAILED):
            if stack and stack[-1] == row.key:
                stack.pop()
            else:
                top = stack[-1] if stack else None
                problems.append(f"position {row.position}: {row.type} {row.key} while {top} runs")
    return problems


async def _registry_log(session: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    async with session.get(url + "/calls") as answer:
        calls: list[dict[str, Any]] = (await answer.json())["items"]
    return calls


def _duplicates(rows: Sequence[Row], calls: Sequence[dict[str, Any]]) -> list[str]:
    """(R3) Keys with two recorded successes, or applied twice by the registry."""
    succeeded = Counter(row.key for row in rows if row.type == ev.EFFECT_SUCCEEDED)
    applied = Counter(c["idempotency_key"] for c in calls if c["outcome"] == "applied")
    return [f"{k}: {n} successes recorded" for k, n in succeeded.items() if n > 1] + [
        f"{k}: applied {n} times by the registry" for k, n in applied.items() if n > 1
    ]


def _unobserved(rows: Sequence[Row], calls: Sequence[dict[str, Any]]) -> list[str]:
    """(R3) Keys the registry applied that the journal never records as succeeded."""
    succeeded = {row.key for row in rows if row.type == ev.EFFECT_SUCCEEDED}
    applied = {c["idempotency_key"] for c in calls if c["outcome"] == "applied"}
    return sorted(f"{key}: applied, no success recorded" for key in applied - succeeded)


def _canary_hits(password: str, places: Sequence[Path]) -> list[str]:
    """(R16) Files under `places` holding the canary's bytes."""
    needle = password.encode()
    files = [p for place in places for p in ([place] if place.is_file() else place.rglob("*"))]
    return [str(path) for path in files if path.is_file() and needle in path.read_bytes()]


async def _verify(journal: Path, *, within: float) -> list[str]:
    """(R2, R11) The journal check, then `engine replay --verify` in its own process (a
    replay that does not finish within `within` seconds is killed and counted)."""
    try:
        await asyncio.to_thread(check_journal, journal)
    except JournalError as bad:
        return [f"journal check: {bad}"]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "engine", "replay", str(journal), "--verify",
        "--backoff-cap", f"{BACKOFF_CAP_SECONDS:g}", stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(process.communicate(), within)
    except TimeoutError:
        process.kill()
        await process.wait()
        return [f"replay --verify did not finish within {within:g} s"]
    if process.returncode != 0:
        return [f"replay --verify exit {process.returncode}: {out.decode(errors='replace')[-500:]}"]
    return []


def _export_path(into: Path, iteration: int) -> Path:
    """`into/iteration-N.jsonl`, the directory made and no older file there."""
    into.mkdir(mode=0o700, parents=True, exist_ok=True)
    export = into / f"iteration-{iteration}.jsonl"
    export.unlink(missing_ok=True)
    return export


async def _keep_failed(engine: _Engine, into: Path, iteration: int) -> str:
    """Keep the journal of a failed verify as an export in `into` (and the engine's
    output beside it); what the problem says of it: where it is, or why it is not."""
    export = _export_path(into, iteration)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "engine", "journal", "export", str(engine.journal),
        "--to", str(export), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await process.communicate()
    if process.returncode != 0:
        return f"journal not kept: export exit {process.returncode}: {out.decode()[-300:]}"
    with contextlib.suppress(OSError):
        output = shutil.copyfile(engine.log, into / f"iteration-{iteration}.engine.out")
        os.chmod(output, 0o600)
    return f"journal kept: {export}"


async def _install_crd(session: aiohttp.ClientSession) -> None:
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    async with session.post(path, json=SITE.crd()) as answer:
        if answer.status not in (201, 409):
            raise SoakError(f"the Site CRD was refused: {answer.status}")


async def _kill_at_random_moment(engine: _Engine, rng: random.Random) -> None:
    """SIGKILL after a random 0.1-1.5 s: one time in five counted from the spawn (so the
    kill lands during start-up), else from the moment the engine reached the API server."""
    if rng.random() >= 0.2:
        deadline = time.monotonic() + START_WITHIN_SECONDS
        while CONNECTED not in engine.output():
            assert engine.process is not None
            if engine.process.returncode is not None:
                raise SoakError(
                    f"the engine exited ({engine.process.returncode}) before it reached the "
                    f"API server: {engine.output()[-2000:]}"
                )
            if time.monotonic() > deadline:
                raise SoakError(
                    f"the engine did not reach the API server within {START_WITHIN_SECONDS:g} s "
                    f"(a loaded machine?): {engine.output()[-2000:]}"
                )
            await asyncio.sleep(0.02)
    await asyncio.sleep(rng.uniform(0.1, 1.5))
    await engine.kill()


async def _converge(workload: _Workload, registry_url: str, *, within: float) -> list[str]:
    """Wait until nothing diverges; what still diverges at the timeout."""
    deadline = time.monotonic() + within
    while problems := await workload.divergences(registry_url):
        if time.monotonic() > deadline:
            return problems
        await asyncio.sleep(0.2)
    return []


@dataclass(frozen=True)
class SoakSettings:
    """The soak's shape: iterations, Sites at the start, the seed, and how long convergence
    and one replay may take before they count as failures."""

    iterations: int
    resources: int = 500
    seed: int = 1
    converge_within: float = 120.0
    replay_within: float = 300.0
    keep_failed: Path | None = None
    """Where the journal of a failed verify is kept (None: a directory named after the
    soak under the system's temporary one, made on the first failure)."""


async def _iteration(
    engine: _Engine, workload: _Workload, scratch: Path, totals: _Totals, *,
    registry_url: str, rng: random.Random, settings: SoakSettings,
) -> None:  # fmt: skip
    """One start, a churn, a kill at a random moment, a restart to convergence, the checks."""
    await engine.start()
    size = max(1, len(workload.live) // 10)
    churn = asyncio.create_task(
        workload.churn(creates=size, updates=size, deletes=size), name="soak churn"
    )
    await _kill_at_random_moment(engine, rng)
    totals.kills += 1
    await churn
    at_kill = _journal_at_kill(engine.journal, scratch / "at-kill")
    rows_at_kill = await read_rows(at_kill) if at_kill is not None else []
    await engine.start()
    unconverged = await _converge(workload, registry_url, within=settings.converge_within)
    totals.add("unconverged", [f"iteration {totals.kills}: {p}" for p in unconverged])
    await engine.stop()
    rows = await read_rows(engine.journal)
    calls = await _registry_log(workload.session, registry_url)
    totals.add("lost_records", _lost(rows_at_kill, rows))
    totals.add("duplicate_successes", _duplicates(rows, calls))
    totals.add("unobserved_effects", _unobserved(rows, calls))
    totals.add("overlapping_turns", interleaved_outcomes(rows))
    failures = await _verify(engine.journal, within=settings.replay_within)
    if failures and settings.keep_failed is not None:
        kept = await _keep_failed(engine, settings.keep_failed, totals.kills)
        failures = [f"{failure}; {kept}" for failure in failures]
    totals.add("verify_failures", [f"iteration {totals.kills}: {f}" for f in failures])
    totals.add("canary_hits", _canary_hits(workload.password, [engine.state_dir, engine.log]))


async def run_soak(settings: SoakSettings) -> SoakFigures:
    """Run the soak; see the module docstring for what each figure counts."""
    if settings.keep_failed is None:
        name = f"engine-bench-soak-failed-{settings.seed}-{uuid.uuid4().hex[:8]}"
        settings = replace(settings, keep_failed=Path(tempfile.gettempdir()) / name)
    rng = random.Random(settings.seed)
    began = time.monotonic()
    totals = _Totals()
    with tempfile.TemporaryDirectory(prefix="engine-bench-soak-") as directory:
        scratch = Path(directory)
        kubeconfig = scratch / "kubeconfig"
        api_args = ("apiserver", "--db", str(scratch / "api.db"), "--port", "0",
                    "--kubeconfig", str(kubeconfig))  # fmt: skip
        async with (
            _child(("example-service", "--port", "0"), scratch / "registry.log") as registry_url,
            _child(api_args, scratch / "apiserver.log") as api_url,
            aiohttp.ClientSession(api_url) as session,
        ):
            await _install_crd(session)
            workload = _Workload(session, rng, password=f"canary{uuid.uuid4().hex[:16]}")
            await workload.create(settings.resources)
            engine = _Engine(scratch / "engine", kubeconfig, registry_url)
            try:
                for _ in range(settings.iterations):
                    await _iteration(
                        engine, workload, scratch, totals, registry_url=registry_url, rng=rng,
                        settings=settings,
                    )  # fmt: skip
            finally:
                await engine.stop()
            rows = await read_rows(engine.journal)
            calls = await _registry_log(session, registry_url)
    return SoakFigures(
        iterations=settings.iterations,
        resources=settings.resources,
        seconds=round(time.monotonic() - began, 1),
        kills=totals.kills,
        lost_records=totals.lost_records,
        duplicate_successes=totals.duplicate_successes,
        unobserved_effects=totals.unobserved_effects,
        overlapping_turns=totals.overlapping_turns,
        canary_hits=totals.canary_hits,
        verify_failures=totals.verify_failures,
        unconverged=totals.unconverged,
        records=len(rows),
        registry_calls=len(calls),
        problems=tuple(totals.problems),
    )
