"""True values of a tabular grid world: V^pi by a linear solve, Q* by value
iteration, and the fixed policies the analyses of Section 4.3 evaluate.

All functions read the exact model of one instance (`envs.grid_model`) and work
in float64 numpy. Values are those of the discounted MDP without the episode
step limit (see `grid_model`'s docstring): termination (eps_term) ends the
return, the truncation at `max_episode_steps` does not.

  Q(s, a) = R(s, a) + gamma * (1 - p_terminate(s, a)) * E[V(s') | s, a]
  V^pi(s) = sum_a pi(a|s) Q^pi(s, a),   V*(s) = max_a Q*(s, a)
"""

from typing import NamedTuple

import numpy as np

from lpg_tf.envs import grid_model

# Value iteration stops when one sweep moves no value by more than this.
VALUE_ITERATION_TOLERANCE = 1e-8


def _check_gamma(gamma: float) -> None:
  if not 0.0 <= gamma < 1.0:
    raise ValueError(f"gamma must be in [0, 1) for finite values, got {gamma}")


def _check_policy(model: grid_model.GridModel, policy: np.ndarray) -> None:
  shape = (model.num_states, model.num_actions)
  if policy.shape != shape:
    raise ValueError(f"policy must be [S, A] = {list(shape)}, got "
                     f"{list(policy.shape)}")
  if np.any(policy < 0) or not np.allclose(policy.sum(-1), 1.0):
    raise ValueError("policy rows must be probability distributions")


def action_values(model: grid_model.GridModel, values: np.ndarray,
                  gamma: float) -> np.ndarray:
  """`[S, A]` Q(s, a) of state values `values` `[S]` (module docstring)."""
  return model.reward + gamma * (1.0 - model.p_terminate) * model.expected_next(
      values)


def policy_values(model: grid_model.GridModel, policy: np.ndarray,
                  gamma: float) -> np.ndarray:
  """V^pi `[S]`: the solution of (I - gamma P_pi) V = R_pi.

  Args:
    model: the instance's model.
    policy: `[S, A]` pi(a|s).
    gamma: discount factor in [0, 1).

  A dense solve: S = 1936 (tabular/dense) takes well under a second, S = 8064
  (tabular/longer_horizon) a 0.5 GB matrix and some seconds.
  """
  _check_gamma(gamma)
  policy = np.asarray(policy, np.float64)
  _check_policy(model, policy)
  matrix = np.eye(model.num_states) - gamma * model.policy_transitions(policy)
  return np.linalg.solve(matrix, np.sum(policy * model.reward, axis=-1))


class OptimalValues(NamedTuple):
  """V* `[S]` and Q* `[S, A]`, and the sweeps value iteration took."""
  values: np.ndarray
  action_values: np.ndarray
  iterations: int


def optimal_values(model: grid_model.GridModel, gamma: float,
                   tolerance: float = VALUE_ITERATION_TOLERANCE,
                   max_iterations: int = 100_000) -> OptimalValues:
  """Value iteration V <- max_a Q(s, a) from V = 0 until a sweep moves no value
  by more than `tolerance` (then V is within tolerance * gamma / (1 - gamma)
  of V*).

  Raises:
    RuntimeError: if `max_iterations` sweeps do not get there.
  """
  _check_gamma(gamma)
  values = np.zeros(model.num_states)
  for iteration in range(1, max_iterations + 1):
    q = action_values(model, values, gamma)
    new_values = q.max(axis=-1)
    change = np.max(np.abs(new_values - values))
    values = new_values
    if change <= tolerance:
      return OptimalValues(values, action_values(model, values, gamma),
                           iteration)
  raise RuntimeError(f"value iteration moved values by {change:g} after "
                     f"{max_iterations} sweeps (tolerance {tolerance:g})")


def uniform_policy(model: grid_model.GridModel) -> np.ndarray:
  """`[S, A]` the uniformly random policy."""
  return np.full([model.num_states, model.num_actions], 1.0 / model.num_actions)


def softmax_policy(q: np.ndarray, temperature: float) -> np.ndarray:
  """`[S, A]` pi(a|s) proportional to exp(Q(s, a) / temperature).

  With Q = Q* and a small temperature this is the near-optimal policy of
  Figure 4b: it prefers the best actions, yet still visits every state an
  evaluation needs. temperature -> 0 gives the greedy policy (ties shared).
  """
  if temperature <= 0:
    raise ValueError(f"temperature must be > 0, got {temperature}")
  logits = (q - q.max(axis=-1, keepdims=True)) / temperature
  weights = np.exp(logits)
  return weights / weights.sum(axis=-1, keepdims=True)
