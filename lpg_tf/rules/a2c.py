"""Advantage actor-critic (Mnih et al. 2016) as an update rule: the paper's
hand-designed baseline (Section 4.1) and the outer algorithm of Eq. 4."""

from lpg_tf import rl_math
from lpg_tf import types
from lpg_tf.rules import base

ENTROPY_COST = 0.01  # Mnih et al. 2016; Table 2's beta_0 range is {0.01, 0.02}.
VALUE_COST = 0.5  # the usual A2C critic weight.
LAMBDA = 0.95  # TD(lambda) mixing for the advantage; 1.0 gives n-step returns.


class A2C(base.UpdateRule):
  """A2C targets from the agent's own value head (the scalar `baseline` output).

    G_t     = TD(lambda) return with bootstrap v(s_T)   (rl_math.lambda_returns)
    pi_hat  = G_t - v(s_t)                              (the advantage)
    f_hat   = G_t                                       (the critic's target)

  The agent loss adds the entropy bonus and the critic regression.
  """

  def __init__(self, lambda_: float = LAMBDA, entropy_cost: float = ENTROPY_COST,
               value_cost: float = VALUE_COST):
    self._lambda = lambda_
    self._loss_config = base.LossConfig(
        subtract_baseline=False, baseline_cost=value_cost,
        entropy_cost=entropy_cost)

  @property
  def loss_config(self) -> base.LossConfig:
    return self._loss_config

  def __call__(self, inputs: types.RuleInputs) -> types.RuleOutput:
    g = rl_math.lambda_returns(inputs.reward, inputs.gamma * inputs.discount,
                               inputs.baseline, self._lambda)
    return types.RuleOutput(pi_hat=g - inputs.baseline[:-1], y_hat=None,
                            baseline_target=g)
