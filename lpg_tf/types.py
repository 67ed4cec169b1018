"""NamedTuples that cross module boundaries in lpg_tf.

Conventions (DESIGN.md):
  * Time-major: a trajectory is `[T, B, ...]` and carries `T + 1` observations.
  * Lifetimes of one environment group sit on a leading axis `L`, so a batch of
    lifetimes' trajectories is `[L, T, B, ...]`.
  * `discount` is 0 at the step that ends an episode and 1 otherwise. The discount
    factor gamma is a separate per-lifetime scalar.
"""

from typing import NamedTuple, Optional

import tensorflow as tf


class TimeStep(NamedTuple):
  """What a batched environment returns from `reset` and `step`, for B environments.

  After `step(state, action)`, `reward` and `discount` belong to the transition just
  taken, and `observation` is the next observation. Environments auto-reset: when a
  transition ends an episode (`discount == 0`), `observation` is already the first
  observation of the next episode. After `reset`, reward is 0 and discount is 1.

  Attributes:
    observation: `[B, ...]`, the environment's observation spec.
    reward: `[B]` float32, r_t.
    discount: `[B]` float32, 0 where the transition ended the episode, else 1.
    truncated: `[B]` bool, True where the episode ended at its step limit rather
      than by the environment's own termination (discount is 0 in both cases;
      this flag only lets users such as the gymnasium adapter tell them apart).
  """
  observation: tf.Tensor
  reward: tf.Tensor
  discount: tf.Tensor
  truncated: tf.Tensor


class AgentOutput(NamedTuple):
  """An agent network's outputs for a batch of observations `[..., obs]`.

  Attributes:
    policy_logits: `[..., A]`, logits of pi(a|s).
    prediction_logits: `[..., m]`, logits of the prediction vector; y(s) is their
      softmax, so y(s) lies on the m-simplex (Section 3.1).
    baseline: `[...]`, a scalar head: a value v(s) for A2C or the action-independent
      baseline f(s) of Eq. 7.
  """
  policy_logits: tf.Tensor
  prediction_logits: tf.Tensor
  baseline: tf.Tensor


class Trajectory(NamedTuple):
  """A rollout of T steps for L lifetimes with B environments each.

  Attributes:
    observation: `[L, T + 1, B, ...]`, s_0..s_T (s_T is the bootstrap observation).
    action: `[L, T, B]` int32, a_t.
    reward: `[L, T, B]` float32, r_t.
    discount: `[L, T, B]` float32, 0 where the transition ended the episode.
    episode_return: `[L, T, B]` float32, the undiscounted return of the episode that
      ended at this transition; only meaningful where `discount == 0`.
    next_observation: `[L, T, B, ...]`, the true s_{t+1} of each transition: the
      terminal observation where `discount == 0` (where `observation[:, t + 1]`
      is already the next episode's first), else equal to `observation[:, t + 1]`.
      The rule reads y(s_{t+1}) on it (Appendix B.1: nothing crosses an episode
      boundary). A source without terminal observations passes
      `observation[:, 1:]`.
  """
  observation: tf.Tensor
  action: tf.Tensor
  reward: tf.Tensor
  discount: tf.Tensor
  episode_return: tf.Tensor
  next_observation: tf.Tensor


class RuleInputs(NamedTuple):
  """What an update rule reads from a trajectory, flattened to `[T, N]` (N = L * B).

  This is exactly the input x_t of Section 3.1 plus the agent's own scalar head,
  which only hand-designed rules such as A2C may read (LPG never sees values).

  Attributes:
    reward: `[T, N]`, r_t.
    discount: `[T, N]`, d_t: 0 at terminal steps, 1 otherwise.
    gamma: `[T, N]`, the lifetime's discount factor, repeated.
    pi_a: `[T, N]`, pi(a_t|s_t).
    y: `[T, N, m]`, y(s_t) (softmax probabilities).
    y_next: `[T, N, m]`, y(s_{t+1}).
    baseline: `[T + 1, N]`, the agent's scalar head at s_0..s_T.
  """
  reward: tf.Tensor
  discount: tf.Tensor
  gamma: tf.Tensor
  pi_a: tf.Tensor
  y: tf.Tensor
  y_next: tf.Tensor
  baseline: tf.Tensor


class RuleOutput(NamedTuple):
  """Targets an update rule produces for the agent, `[T, N, ...]`.

  The agent loss (lpg_tf.learning.agent_update, Eq. 2 / Eq. 7) treats every field
  as a constant with respect to the agent's parameters.

  Attributes:
    pi_hat: `[T, N]`, how to move log pi(a_t|s_t) (Eq. 2); the advantage for A2C.
    y_hat: `[T, N, m]` target for y(s_t) on the simplex, or None when the rule does
      not train the prediction vector (A2C).
    baseline_target: `[T, N]`, the regression target for the scalar head (the
      lambda-return for A2C; pi_hat for the Eq. 7 baseline), or None.
    y_hat_logits: `[T, N, m]` logits whose softmax is y_hat, or None. The KL of
      Eq. 2 reads log y_hat from them by log-softmax, which stays finite and
      differentiable where y_hat's softmax underflows to 0 in float32; a rule
      that only has probabilities (an exported rule) leaves it None.
  """
  pi_hat: tf.Tensor
  y_hat: Optional[tf.Tensor]
  baseline_target: Optional[tf.Tensor]
  y_hat_logits: Optional[tf.Tensor] = None
