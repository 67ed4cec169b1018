"""Update rules behind one interface (`rules.base.UpdateRule`), by name."""

import os

from lpg_tf import errors
from lpg_tf.rules import a2c
from lpg_tf.rules import base
from lpg_tf.rules import saved_model

NAMES = ("a2c",)


def make(name: str) -> base.UpdateRule:
  """The update rule called `name`: one of NAMES, or an exported LPG SavedModel
  directory (`saved_model.SavedModelRule`)."""
  if name == "a2c":
    return a2c.A2C()
  if name and os.path.isdir(name):
    return saved_model.SavedModelRule(name)
  raise errors.ConfigError(
      f"Unknown --rule {name!r}; valid: {', '.join(NAMES)}, or the directory of "
      "an exported rule (SavedModel)")
