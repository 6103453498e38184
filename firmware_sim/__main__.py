"""``python -m firmware_sim`` is ``beacon-sim``."""

from __future__ import annotations

import sys

from firmware_sim.cli import main

sys.exit(main())
