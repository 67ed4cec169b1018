"""LPG-V (Section 4.1): a learned policy update on top of a TD(lambda) value.

The paper's baseline "that, like MetaGenRL, only learns a policy update rule
(pi_hat) given a value function trained by TD(lambda) without discovering its
own prediction semantics". It is LPG's network (`rules.lpg`: the shared
embedding phi, the backward LSTM with resets and its hand-written gradient,
the pi_hat head) with the agent's prediction vector replaced by a value:

  * the agent predicts a scalar v(s) (m = VALUE_SIZE, its prediction head read
    raw, `base.LossConfig.y_softmax` False), so the rule reads
      x_t = [r_t, d_t, gamma, pi(a_t|s_t), phi(v(s_t)), phi(v(s_{t+1}))];
  * eta learns pi_hat only. The value's target is not learned: it is the
    TD(lambda) return of v,
      G_t = r_t + gamma d_t ((1 - lambda) v(s_{t+1}) + lambda G_{t+1}),
    with G_{T-1} bootstrapping from v(s_T), and the agent regresses v on it.

So the agent update is Eq. 2 with y := v, y_hat := G and the squared error in
place of the KL: descending -log pi(a_t|s_t) pi_hat_t + alpha_y (v(s_t) - G_t)^2
(`learning.agent_update`). G is a constant for the agent's gradient (TD's
semi-gradient) but a function of theta_k, so the meta-gradient through K inner
updates flows through it as through LPG's targets. Eq. 4's beta1 H(y) and
beta3 ||y_hat||^2 regularise a learned prediction and do not apply here
(`experiments.meta_train` leaves them out).

The exported rule (`export.export_rule`) keeps LPG's signature with m = 1:
`y`, `y_next` carry v(s_t), v(s_{t+1}) and `y_hat` is G, so a meta-tested
agent's value is trained by TD(lambda) with the lambda the rule was meta-trained
with.
"""

from typing import Sequence

import tensorflow as tf

from lpg_tf import errors
from lpg_tf import rl_math
from lpg_tf import types
from lpg_tf.rules import lpg

KIND = "lpg_v"
VALUE_SIZE = 1  # The agent's prediction is the scalar value v(s).
TD_LAMBDA = 0.95  # The value's TD(lambda); the paper does not give it.


def td_lambda_returns(inputs: types.RuleInputs, lambda_: float,
                      portable: bool = False) -> tf.Tensor:
  """G^lambda `[T, N]` of the values in `inputs.y` (v(s_t)) and `inputs.y_next`
  (v(s_{t+1}), the true next state's), discounted by gamma * d_t.

  Args:
    inputs: rule inputs with `y`, `y_next` `[T, N, 1]`.
    lambda_: lambda in [0, 1].
    portable: a forward scan over the reversed steps instead of a reverse
      scan, for graphs converted to ONNX (`lstm_backward.backward_lstm`: tf2onnx
      mistranslates reverse scans); the same values.
  """
  # A squeeze, not `[..., 0]`: its gradient is a reshape, not StridedSliceGrad
  # (lpg_tf.slicing), and the meta-gradient differentiates it twice.
  v_next = tf.squeeze(inputs.y_next, axis=-1)
  discount = inputs.gamma * inputs.discount
  if not portable:
    # lambda_returns bootstraps step t from values[t + 1] and step T-1 from
    # values[T]: v(s_{t+1}) for every t. Its values[0] is not read.
    values = tf.concat([v_next[:1], v_next], axis=0)
    return rl_math.lambda_returns(inputs.reward, discount, values, lambda_)

  def step(g_next, elems):
    reward, discount_t, value_next = elems
    return reward + discount_t * ((1.0 - lambda_) * value_next
                                  + lambda_ * g_next)

  reversed_returns = tf.scan(
      step, (tf.reverse(inputs.reward, [0]), tf.reverse(discount, [0]),
             tf.reverse(v_next, [0])), initializer=v_next[-1])
  return tf.reverse(reversed_returns, [0])


class LPGV(lpg.LPG):
  """LPG-V: LPG's network reading v instead of y, learning pi_hat only."""

  def __init__(self,
               hidden_size: int = lpg.HIDDEN_SIZE,
               embedding_sizes: Sequence[int] = lpg.EMBEDDING_SIZES,
               use_baseline: bool = False,
               td_lambda: float = TD_LAMBDA,
               dtype: tf.DType = tf.float32,
               name: str = "lpg_v"):
    """Configures the rule; variables are created on the first call.

    Args:
      hidden_size: units of the backward LSTM.
      embedding_sizes: layer sizes of phi, applied to v(s_t) and v(s_{t+1}).
      use_baseline: the action-independent baseline of Eq. 7, as for LPG.
      td_lambda: lambda of the value's TD(lambda) return.
      dtype: the LSTM's dtype, as for LPG.
      name: module name.

    Raises:
      errors.ConfigError: td_lambda outside [0, 1].
    """
    if not 0.0 <= td_lambda <= 1.0:
      raise errors.ConfigError(f"td_lambda must be in [0, 1], got {td_lambda}")
    super().__init__(hidden_size=hidden_size, prediction_size=VALUE_SIZE,
                     embedding_sizes=embedding_sizes, use_baseline=use_baseline,
                     y_softmax=False, dtype=dtype, name=name)
    self._td_lambda = float(td_lambda)

  def _make_y_head(self, init_stddev):
    """No y_hat head: the value's target is G^lambda, not eta's."""
    del init_stddev
    return None

  @property
  def kind(self) -> str:
    return KIND

  @property
  def td_lambda(self) -> float:
    return self._td_lambda

  def _targets(self, outputs: tf.Tensor, inputs: types.RuleInputs,
               portable: bool) -> types.RuleOutput:
    """Targets for a trajectory (`__call__`, `member_targets`).

    Args:
      outputs: the pi_hat head's read-out `[T, N, 1]`.
      inputs: `reward`, `discount`, `gamma`, `pi_a` `[T, N]`; `y`, `y_next`
        `[T, N, 1]` the agent's v(s_t), v(s_{t+1}); `baseline` is not read.
      portable: as for `lpg.LPG.__call__`.

    Returns:
      `pi_hat` `[T, N]`, `y_hat` `[T, N, 1]` the TD(lambda) return G, and,
      with `use_baseline`, `baseline_target` = `pi_hat` (Eq. 7).
    """
    pi_hat = tf.squeeze(outputs, axis=-1)  # As v_next in td_lambda_returns.
    returns = td_lambda_returns(inputs, self._td_lambda, portable)
    return types.RuleOutput(
        pi_hat=pi_hat, y_hat=returns[..., None],
        baseline_target=pi_hat if self.use_baseline else None)
