"""Shared pytest configuration: Hypothesis profiles for the property-based tests.

* ``ci`` (default): few examples per property, derandomized (the same examples on every
  run, no example database), no deadline (the CI machine is a loaded 2-core box), so
  ``tests/test_properties*.py`` add seconds, not minutes, and never flake.
* ``nightly``: many random examples per property, for a nightly or manual run::

      FACELAB_HYPOTHESIS_PROFILE=nightly .venv/bin/python -m pytest tests/test_properties_ops.py \\
          tests/test_properties_loaders.py -p no:xdist
      # or: pytest --hypothesis-profile nightly ...
"""

from __future__ import annotations

import os

try:
    from hypothesis import HealthCheck, settings
except ImportError:  # the dev extra is not installed: the property tests skip themselves
    settings = None

#: Examples per property in each profile (also quoted by the property tests' docstrings).
PROFILE_EXAMPLES = {"ci": 25, "nightly": 1000}

if settings is not None:
    _slow_ok = [HealthCheck.too_slow, HealthCheck.data_too_large,
                HealthCheck.filter_too_much]
    settings.register_profile("ci", max_examples=PROFILE_EXAMPLES["ci"], deadline=None,
                              derandomize=True, database=None, print_blob=True,
                              suppress_health_check=_slow_ok)
    settings.register_profile("nightly", max_examples=PROFILE_EXAMPLES["nightly"],
                              deadline=None, print_blob=True,
                              suppress_health_check=_slow_ok)
    settings.load_profile(os.environ.get("FACELAB_HYPOTHESIS_PROFILE", "ci"))
