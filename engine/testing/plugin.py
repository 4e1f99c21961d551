"""The pytest plugin of the test kit (entry point `pytest11: engine`): fixtures for an
operator's tests. Define `engine_operator` (your Operator) in your conftest.py; then

- `engine_cluster`: an embedded API server with its CRD installed (`EmbeddedCluster`);
- `engine_runner`: the engine running it against that server (`RunningOperator`);
- `engine_handlers`: a `HandlerEnvironment` (one handler run, in memory, no server);
- `engine_clock`: a `FakeClock`.

Every fixture name starts with `engine_`, so it never shadows a project's own; the kit is
imported only when a fixture is used, so loading the plugin costs a pytest run nothing.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from engine import Operator
    from engine.clock import FakeClock
    from engine.testing.cluster import EmbeddedCluster
    from engine.testing.handler_env import HandlerEnvironment
    from engine.testing.running_operator import RunningOperator

HAS_PYTEST_ASYNCIO = importlib.util.find_spec("pytest_asyncio") is not None
"""The async fixtures need pytest-asyncio (`pip install engine[testing]`); without it the
plugin still loads and offers the others, so it never breaks a project's pytest."""


@pytest.fixture
def engine_operator() -> Operator:
    """Override in your conftest.py: return the Operator under test."""
    raise pytest.UsageError(
        "the engine fixtures need your operator: define a fixture `engine_operator` "
        "returning it in conftest.py"
    )


@pytest.fixture
def engine_clock() -> FakeClock:
    """A clock that moves only when told (`engine_clock.advance(seconds)`)."""
    from engine.clock import FakeClock

    return FakeClock()


@pytest.fixture
def engine_handlers(engine_operator: Operator, engine_clock: FakeClock) -> HandlerEnvironment:
    """In-memory parts for one provision or finalize at a time."""
    from engine.testing.handler_env import HandlerEnvironment

    return HandlerEnvironment(engine_operator, clock=engine_clock)


if HAS_PYTEST_ASYNCIO:
    import pytest_asyncio

    @pytest_asyncio.fixture
    async def engine_cluster(
        engine_operator: Operator, tmp_path: Path
    ) -> AsyncIterator[EmbeddedCluster]:
        """A real embedded API server on a free port, the operator's CRD served."""
        from engine.testing.cluster import start_cluster

        async with start_cluster(engine_operator, directory=tmp_path / "cluster") as cluster:
            yield cluster

    @pytest_asyncio.fixture
    async def engine_runner(
        engine_operator: Operator, engine_cluster: EmbeddedCluster, tmp_path: Path
    ) -> AsyncIterator[RunningOperator]:
        """The engine running the operator against `engine_cluster`, ready."""
        from engine.testing.running_operator import run_operator

        async with run_operator(
            engine_operator, engine_cluster, state_dir=tmp_path / "engine"
        ) as running:
            yield running
