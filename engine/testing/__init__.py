"""The test kit for operators built on the engine (also a pytest plugin: see plugin.py).

- `HandlerEnvironment`: one provision or finalize against in-memory parts, milliseconds;
- `start_cluster`: a real embedded API server with the operator's CRD;
- `run_operator`: the real engine against it, in the test's event loop, with waits;
- `FakeClock`; `arm_failpoints` / `failpoint_env`: failpoints.
"""

from __future__ import annotations

from engine.clock import FakeClock
from engine.runtime.reconcile.memory_cluster import MemoryCluster
from engine.testing.cluster import ClusterRequestError, EmbeddedCluster, start_cluster
from engine.testing.failpoints import KNOWN_FAILPOINTS, arm_failpoints, failpoint_env
from engine.testing.handler_env import EffectCall, HandlerEnvironment, HandlerRun, SpecRefused
from engine.testing.running_operator import RunningOperator, WaitTimeout, run_operator

__all__ = [
    "KNOWN_FAILPOINTS",
    "ClusterRequestError",
    "EffectCall",
    "EmbeddedCluster",
    "FakeClock",
    "HandlerEnvironment",
    "HandlerRun",
    "MemoryCluster",
    "RunningOperator",
    "SpecRefused",
    "WaitTimeout",
    "arm_failpoints",
    "failpoint_env",
    "run_operator",
    "start_cluster",
]
