"""pytest set-up shared by all suites.

Tests marked `slow` (real subprocesses killed and restarted, a minute or more
each) run only with `--runslow`: `python -m pytest tests -q --runslow -m slow`.
"""

from absl import flags
import pytest


def pytest_addoption(parser):
  parser.addoption("--runslow", action="store_true", default=False,
                   help="also run tests marked slow")


def pytest_configure(config):
  """absltest helpers (create_tempdir, ...) read absl flags; pytest never parses them."""
  config.addinivalue_line("markers", "slow: minutes-long fault tests; need --runslow")
  flags.FLAGS.mark_as_parsed()


def pytest_collection_modifyitems(config, items):
  if config.getoption("--runslow"):
    return
  skip = pytest.mark.skip(reason="slow: pass --runslow to run it")
  for item in items:
    if "slow" in item.keywords:
      item.add_marker(skip)
