"""pytest set-up shared by all suites."""

from absl import flags


def pytest_configure(config):
  """absltest helpers (create_tempdir, ...) read absl flags; pytest never parses them."""
  del config
  flags.FLAGS.mark_as_parsed()
