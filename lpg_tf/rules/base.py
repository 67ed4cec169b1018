"""The interface every update rule implements: trajectory in, targets out.

A rule reads the rule inputs of a trajectory (`types.RuleInputs`, time-major
`[T, N]` with N = lifetimes x environments flattened, so one call serves every
lifetime of a group) and returns the agent's targets (`types.RuleOutput`). How the
agent turns targets into a parameter update is `lpg_tf.learning.agent_update`; the
rule only states which terms its loss has (`loss_config`).
"""

import abc
from typing import NamedTuple, Optional

from lpg_tf import types


class LossConfig(NamedTuple):
  """The static shape of a rule's agent loss (`lpg_tf.learning.agent_update`).

  Attributes:
    subtract_baseline: subtract f(s) from pi_hat in the policy term (Eq. 7).
    baseline_cost: c_f, weight of 1/2 (f(s) - f_hat)^2.
    entropy_cost: beta_H, weight of the policy-entropy bonus (A2C only; LPG's
      entropy regulariser belongs to the meta-objective, Eq. 4).
    y_softmax: the agent's prediction y is the softmax of its prediction head,
      on the m-simplex, and the prediction term is alpha_y KL(y || y_hat)
      (Eq. 2). False: y is the head's raw output in R^m, the rule reads it raw
      and the term is alpha_y ||y - y_hat||^2 (Section 4.4's "LPG w/o
      Softmax(y)"; LPG-V's value v, m = 1, learns this way too).
  """
  subtract_baseline: bool = False
  baseline_cost: float = 0.0
  entropy_cost: float = 0.0
  y_softmax: bool = True


# Eq. 7 (Appendix B.2): the agent subtracts f(s) from pi_hat and regresses f(s)
# on pi_hat with weight 1.
EQ7_LOSS = LossConfig(subtract_baseline=True, baseline_cost=1.0)


class UpdateRule(abc.ABC):
  """An update rule: `rule(inputs) -> targets`, plus the shape of its agent loss."""

  @property
  @abc.abstractmethod
  def loss_config(self) -> LossConfig:
    """Which terms of the agent loss this rule's targets feed."""

  @property
  def prediction_size(self) -> Optional[int]:
    """m, the size of the prediction vector y the rule reads; None if it reads none."""
    return None

  @abc.abstractmethod
  def __call__(self, inputs: types.RuleInputs) -> types.RuleOutput:
    """Targets `[T, N, ...]` for a trajectory `[T, N, ...]`."""
