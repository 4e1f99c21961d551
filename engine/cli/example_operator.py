"""The example Site operator as a REF target (`engine.cli.example_operator:site`).

Its registry client is built for `ENGINE_REGISTRY_URL` and opened by whoever runs it:
`engine run` starts the example registry itself and passes its own client instead, and
`engine replay --verify` answers every effect from the journal and calls nothing.
"""

from __future__ import annotations

import os

from engine import Operator
from engine.example.registry_client import RegistryClient
from engine.example.site import site_operator

UNUSED_REGISTRY = "http://registry.replay.invalid"


def site() -> Operator:
    """The example operator, its registry at `ENGINE_REGISTRY_URL` (unset: none)."""
    return site_operator(RegistryClient(os.environ.get("ENGINE_REGISTRY_URL", UNUSED_REGISTRY)))
