"""The interface every update rule implements: trajectory in, targets out.

A rule reads the rule inputs of a trajectory (`types.RuleInputs`, time-major
`[T, N]` with N = lifetimes x environments flattened, so one call serves every
lifetime of a group) and returns the agent's targets (`types.RuleOutput`). How the
agent turns targets into a parameter update is `lpg_tf.learning.agent_update`; the
rule only states which terms its loss has (`loss_config`).
"""

import abc
from typing import Optional

from lpg_tf import types
from lpg_tf.learning import agent_update


class UpdateRule(abc.ABC):
  """An update rule: `rule(inputs) -> targets`, plus the shape of its agent loss."""

  @property
  @abc.abstractmethod
  def loss_config(self) -> agent_update.LossConfig:
    """Which terms of the agent loss this rule's targets feed."""

  @property
  def prediction_size(self) -> Optional[int]:
    """m, the size of the prediction vector y the rule reads; None if it reads none."""
    return None

  @abc.abstractmethod
  def __call__(self, inputs: types.RuleInputs) -> types.RuleOutput:
    """Targets `[T, N, ...]` for a trajectory `[T, N, ...]`."""
