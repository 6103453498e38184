"""The beacon side: simulated Eddystone beacon firmware and the world it transmits into.

Depends on ``eid`` only (and on bleak's data types at its output edge), never on ``gateway``.
"""

from __future__ import annotations
