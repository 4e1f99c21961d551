"""What decide asks for: a trigger to fire and effects to run, as plain data.

The effects are imperative and few. The reconciler runs them in the given order and
stops at the first failure (then requeues). Each class documents its contract.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AddFinalizer:
    """Add the engine's finalizer to `metadata.finalizers` (a patch guarded by the
    observed resourceVersion). Level-based: decide asks again while the observation
    lacks it. Always precedes the first `RunProvision` (R9, docs/guarantees.md); never asked
    for once deletion is requested."""


@dataclass(frozen=True, slots=True)
class RemoveFinalizer:
    """Remove the engine's finalizer; asked for only after cleanup is durably recorded
    (the `finalize` effect succeeded) or was never needed. A 404 counts as done."""


@dataclass(frozen=True, slots=True)
class RunProvision:
    """Run the operator's provision handler as the effect `key` (name `provision`):
    `await runner.run(stream, key, "provision", handler)`. The handler runs its own
    named steps through the same runner with keys `effect_key(uid, generation, step,
    round)`, so a re-run after a crash skips the steps already recorded. `resume` is True
    when this key is in flight from before (a restart), not a fresh attempt."""

    key: str
    generation: int
    round: int
    resume: bool = False


@dataclass(frozen=True, slots=True)
class RunFinalize:
    """Run the operator's finalize (cleanup) handler as the effect `key` (name
    `finalize`), like `RunProvision`; `round` is the stream's round floor (0 unless the
    object was restored from a backup: its steps' keys then carry it). `resume` as there."""

    key: str
    generation: int
    round: int = 0
    resume: bool = False


@dataclass(frozen=True, slots=True)
class PatchStatus:
    """Patch the status subresource to say `phase`, `observed_generation` and `reason`
    (None clears it), then journal `StatusWritten`. Asked for only when the observed
    status differs, so an applied patch is not repeated (no self-triggered storm)."""

    phase: str
    observed_generation: int
    reason: str | None = None


Effect = AddFinalizer | RemoveFinalizer | RunProvision | RunFinalize | PatchStatus


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of `decide`.

    Expected flow for the reconciler: if `trigger` is set, compute
    `next_state(state.state, trigger)` and journal `TransitionTaken` (an
    `IllegalTransition` is journaled as `IllegalTrigger` and stops the pass); then run
    `effects` in order, stopping at the first failure; then fold again and call decide
    with the newest observation, until a decision is `idle`; requeue after
    `requeue_after` seconds when set. `rule` names the branch of decide that answered
    (for timelines and "why" questions), `effect_key`/`attempt` name the failure an
    `effect_failed` trigger acknowledges (journal them in `TransitionTaken`).
    """

    rule: str
    trigger: str | None = None
    effects: tuple[Effect, ...] = ()
    requeue_after: float | None = None
    effect_key: str | None = None
    attempt: int | None = None

    @property
    def idle(self) -> bool:
        """Nothing to fire and nothing to run: the pass is over."""
        return self.trigger is None and not self.effects
