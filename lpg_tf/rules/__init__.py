"""Update rules behind one interface (`rules.base.UpdateRule`), by name."""

import os

from lpg_tf import errors
from lpg_tf.rules import a2c
from lpg_tf.rules import base
from lpg_tf.rules import pretrained
from lpg_tf.rules import saved_model

NAMES = ("a2c",)


def make(name: str) -> base.UpdateRule:
  """The update rule called `name`: one of NAMES, a rule shipped with the
  package (`pretrained` or `pretrained:NAME`, `rules.pretrained`), or an
  exported LPG SavedModel directory (`saved_model.SavedModelRule`)."""
  if name == "a2c":
    return a2c.A2C()
  shipped = pretrained.parse(name) if name else None
  if shipped is not None:
    return pretrained.load(shipped)
  if name and os.path.isdir(name):
    return saved_model.SavedModelRule(name)
  raise errors.ConfigError(
      f"Unknown --rule {name!r}; valid: {', '.join(NAMES)}, "
      f"{pretrained.PREFIX} (a shipped rule; {pretrained.PREFIX}:NAME with NAME "
      f"one of {', '.join(pretrained.NAMES)}), or the directory of an exported "
      "rule (SavedModel)")
