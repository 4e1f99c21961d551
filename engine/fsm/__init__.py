"""The state machine: transition table, shared machine, fold and decide (all pure)."""

from engine.fsm.decide import DEFAULT_POLICY, DecidePolicy, decide
from engine.fsm.decision import (
    AddFinalizer,
    Decision,
    Effect,
    PatchStatus,
    RemoveFinalizer,
    RunFinalize,
    RunProvision,
)
from engine.fsm.errors import FoldError, FsmError, IllegalTransition, UnknownState
from engine.fsm.fold import after_transition, apply, fold
from engine.fsm.key import FINALIZE, PROVISION, KeyParts, effect_key, parse_key
from engine.fsm.machine import allowed_triggers, next_state
from engine.fsm.observation import Observation
from engine.fsm.state import EffectRecord, ResourceState, from_snapshot, to_snapshot
from engine.fsm.table import STATES, TRANSITIONS, TRIGGERS, Transition

__all__ = [
    "DEFAULT_POLICY",
    "FINALIZE",
    "PROVISION",
    "STATES",
    "TRANSITIONS",
    "TRIGGERS",
    "AddFinalizer",
    "DecidePolicy",
    "Decision",
    "Effect",
    "EffectRecord",
    "FoldError",
    "FsmError",
    "IllegalTransition",
    "KeyParts",
    "Observation",
    "PatchStatus",
    "RemoveFinalizer",
    "ResourceState",
    "RunFinalize",
    "RunProvision",
    "Transition",
    "UnknownState",
    "after_transition",
    "allowed_triggers",
    "apply",
    "decide",
    "effect_key",
    "fold",
    "from_snapshot",
    "next_state",
    "parse_key",
    "to_snapshot",
]
