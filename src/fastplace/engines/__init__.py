"""Engines that run the containers fastplace places.

fastplace's core decides placements and knows nothing of who starts the containers.
An engine connects those decisions to a real runtime:

* :mod:`fastplace.engines.ray` — a Ray cluster: one pinned Ray actor per DI partition,
  per-node block caches, fan-out inference, rollouts (``pip install 'fastplace[ray]'``).

Importing this package imports no engine; each engine imports its runtime lazily.
"""

from __future__ import annotations

__all__: list[str] = []
