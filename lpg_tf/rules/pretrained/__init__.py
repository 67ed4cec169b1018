"""LPG rules meta-trained by lpg_tf and shipped with it (`--rule=pretrained`).

Each rule is a directory next to this module, `<NAME>/`, installed as package
data (setup.py's PACKAGE_DATA), holding

  the export exactly as `lpg_tf.export.export_rule` writes it: the SavedModel
      (`saved_model.pb`, `fingerprint.pb`, `variables/`,
      `assets.extra/lpg_tf_rule.json`) and `rule.onnx`;
  MODEL_CARD.md: what the rule was meta-trained on, for how long, which
      agent hyperparameters it expects and what it reaches with them;
  hyperparameters.json: those hyperparameters, read by `hyperparameters`.

On the command line a shipped rule is `pretrained` (the DEFAULT one) or
`pretrained:NAME`, wherever a rule directory is accepted (`rules.make`, the
launchers' `--rule` and `--init_rule`); `pretrained` always means the shipped
rule, so a directory of that name is given as `./pretrained`.

hyperparameters.json maps keys to `{"learning_rate": alpha_lr, "kl_cost":
alpha_y}`. A key is an environment name (`tabular/dense`, `minatar/breakout`)
or a kind of environment, the part of names up to their "/" (`tabular/`,
`minatar/`, `atari/`): an environment takes its own entry if there is one,
else its kind's. The rule's targets are scaled for the agents
it was meta-trained with, so the right alpha differs by kind of agent (SGD on
tables, Adam on networks) and is part of the rule, like its weights.

The files are found next to this module, not through a zip-capable loader: a
SavedModel loads from a real directory, and pip installs packages unpacked.
"""

import json
import math
import os
from typing import Dict, NamedTuple, Optional

from lpg_tf import errors
from lpg_tf.rules import saved_model

NAMES = ("lpg_cpu", "lpg_v_cpu")
DEFAULT = "lpg_cpu"
PREFIX = "pretrained"  # The command-line name: `pretrained` or `pretrained:NAME`.
CARD_FILE = "MODEL_CARD.md"
HYPERPARAMETERS_FILE = "hyperparameters.json"
KIND_SEPARATOR = "/"
_DIRECTORY = os.path.dirname(os.path.abspath(__file__))


class Hyperparameters(NamedTuple):
  """The agent hyperparameters a shipped rule expects in one environment."""
  learning_rate: float  # alpha_lr
  kl_cost: float  # alpha_y, the weight of KL(y || y_hat) in Eq. 2


def parse(rule: str) -> Optional[str]:
  """The NAME that `rule` selects: DEFAULT for `pretrained`, NAME for
  `pretrained:NAME`; None for any other rule (`a2c`, a directory).

  Raises:
    errors.ConfigError: `pretrained:NAME` with NAME not one of NAMES.
  """
  if rule == PREFIX:
    return DEFAULT
  if rule.startswith(PREFIX + ":"):
    return _checked(rule[len(PREFIX) + 1:])
  return None


def export_directory(rule: str) -> str:
  """The directory of the exported rule `rule` names: the shipped rule's for
  `pretrained[:NAME]`, `rule` itself otherwise."""
  name = parse(rule)
  return rule if name is None else path(name)


def path(name: Optional[str] = None) -> str:
  """The directory of the shipped rule `name` (default DEFAULT): its export,
  MODEL_CARD.md and hyperparameters.json."""
  return os.path.join(_DIRECTORY, _checked(name))


def load(name: Optional[str] = None,
         use_baseline: Optional[bool] = None) -> saved_model.SavedModelRule:
  """The shipped rule `name` (default DEFAULT) as an update rule.

  Args:
    name: one of NAMES; None for DEFAULT.
    use_baseline: the Eq. 7 baseline (Appendix B.2); None keeps the export's.
  """
  return saved_model.SavedModelRule(path(name), use_baseline=use_baseline)


def card(name: Optional[str] = None) -> str:
  """The model card (Markdown) of the shipped rule `name` (default DEFAULT)."""
  with open(os.path.join(path(name), CARD_FILE), encoding="utf-8") as f:
    return f.read()


def hyperparameters(name: Optional[str], env_name: str) -> Hyperparameters:
  """The alpha_lr and alpha_y the shipped rule `name` (None: DEFAULT) expects
  in `env_name`: the environment's own entry, else its kind's (module
  docstring).

  Raises:
    errors.ConfigError: an unknown `name`, or no entry covers `env_name`.
  """
  name = _checked(name)
  table = _read_hyperparameters(name)
  if env_name in table:
    return table[env_name]
  kind, separator, _ = env_name.partition(KIND_SEPARATOR)
  if separator and kind + separator in table:
    return table[kind + separator]
  raise errors.ConfigError(
      f"The pretrained rule {name!r} has no hyperparameters for {env_name!r}; "
      f"it has them for {', '.join(table)}. Give --learning_rate and "
      "--kl_cost.")


def _checked(name: Optional[str]) -> str:
  """`name`, or DEFAULT for None; ConfigError unless one of NAMES."""
  name = DEFAULT if name is None else name
  if name not in NAMES:
    raise errors.ConfigError(
        f"Unknown pretrained rule {name!r}; valid: {', '.join(NAMES)} "
        f"({PREFIX} alone is {PREFIX}:{DEFAULT})")
  return name


def _read_hyperparameters(name: str) -> Dict[str, Hyperparameters]:
  """hyperparameters.json of the shipped rule `name`, checked."""
  filename = os.path.join(path(name), HYPERPARAMETERS_FILE)
  try:
    with open(filename, encoding="utf-8") as f:
      content = json.load(f)
    table = {key: Hyperparameters(learning_rate=float(entry["learning_rate"]),
                                  kl_cost=float(entry["kl_cost"]))
             for key, entry in content.items()}
  except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
    raise errors.ConfigError(f"Cannot read {filename}: {e!r}") from e
  for key, value in table.items():
    if not (math.isfinite(value.learning_rate) and value.learning_rate > 0
            and math.isfinite(value.kl_cost) and value.kl_cost >= 0):
      raise errors.ConfigError(
          f"{filename}: {key!r} needs learning_rate > 0 and kl_cost >= 0, got "
          f"{value}")
  return table
