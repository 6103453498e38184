"""Hypothesis profiles: "ci" (the default) and "long", chosen with HYPOTHESIS_PROFILE."""

from __future__ import annotations

import os

from hypothesis import settings

# No example database: the suite writes nothing outside the test run (failures print a reproducer).
settings.register_profile("ci", max_examples=200, deadline=None, database=None, print_blob=True)
settings.register_profile("long", max_examples=5000, deadline=None, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
