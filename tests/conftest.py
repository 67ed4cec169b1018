"""pytest set-up shared by all suites.

Tests marked `slow` run only with `--runslow`:
`python -m pytest tests -q --runslow -m slow`. They are the minutes-long fault
tests (real subprocesses killed and restarted, a full disk) and the end-to-end
runs whose path a faster default test already covers (e.g. the train_agent
launcher's whole run beside its in-process runs), kept out of the default suite
so that it stays well inside CI's 15 minutes on 2 cores.
"""

from absl import flags
import pytest


def pytest_addoption(parser):
  parser.addoption("--runslow", action="store_true", default=False,
                   help="also run tests marked slow")


def pytest_configure(config):
  """absltest helpers (create_tempdir, ...) read absl flags; pytest never parses them."""
  config.addinivalue_line("markers", "slow: minutes-long tests outside the default suite; need --runslow")
  flags.FLAGS.mark_as_parsed()


def pytest_collection_modifyitems(config, items):
  if config.getoption("--runslow"):
    return
  skip = pytest.mark.skip(reason="slow: pass --runslow to run it")
  for item in items:
    if "slow" in item.keywords:
      item.add_marker(skip)
