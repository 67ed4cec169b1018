"""Convergence of y (Section 4.3, Figure 6).

"Two different prediction vectors (y0, y1) converge to almost the same values
when updated by the LPG", measured by D_KL(y0 || y1) "averaged over 128 grid
world instances". Here, for each instance of a grid world task
(`probe_grid`) and its near-optimal policy (as in Figure 5), two tabular
agents whose y logits start from independent N(0, init_stddev^2) draws (so y0
and y1 start far apart, not at the near-uniform y of a fresh agent) have only
y updated by the rule (`y_probe.evaluate_policies`), on their own
trajectories. Every `record_every` updates, D_KL(y0(s) || y1(s)) is averaged
over the states both visited at least `min_visits` times, then over instances
(mean and standard error).

The same runs with a freshly initialised LPG of the same sizes are the
reference: any rule whose y_hat depends only on what the two agents share (the
rewards, the policy) drives both y towards one target, so convergence says
most when set beside what a rule that learned nothing does.
"""

from typing import NamedTuple, Tuple

import numpy as np

from lpg_tf.analysis import value_horizons
from lpg_tf.analysis import y_probe
from lpg_tf.envs import grid_model
from lpg_tf.envs import grid_world
from lpg_tf.rules import base as rule_base

INIT_STDDEV = 1.0  # Of the initial y logits: y0 and y1 start about 0.9 nats apart (m = 30).
_TINY = 1e-12


def kl_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
  """D_KL(p || q) over the last axis (probability vectors), in nats."""
  p = np.maximum(p, _TINY)
  return np.sum(p * (np.log(p) - np.log(np.maximum(q, _TINY))), axis=-1)


class ConvergenceCurve(NamedTuple):
  """D_KL(y0 || y1) over the updates of one rule.

  Attributes:
    mean: `[R]` over instances of the mean over their states.
    stderr: `[R]` its standard error over instances.
  """
  mean: Tuple[float, ...]
  stderr: Tuple[float, ...]


class Convergence(NamedTuple):
  """Figure 6's numbers.

  Attributes:
    env, action_space: the task.
    gamma: the discount of the updates and of the near-optimal policy.
    instances: how many instances the curves average over.
    init_stddev: of the initial y logits.
    recorded_updates: `[R]` updates after which y was read.
    env_steps_per_update: T x B per agent.
    states: mean over instances of the states compared.
    rule: the rule under test's curve.
    untrained_rule: the freshly initialised rule's curve.
  """
  env: str
  action_space: str
  gamma: float
  instances: int
  init_stddev: float
  recorded_updates: Tuple[int, ...]
  env_steps_per_update: int
  states: float
  rule: ConvergenceCurve
  untrained_rule: ConvergenceCurve


class Example(NamedTuple):
  """The first instance's y0 and y1, for the pictures of Figure 6 (a-b).

  Attributes:
    model: the instance's exact model.
    y0, y1: `[2, S, m]` before the first update and after the last.
    visited: `[S]` the states both agents visited at least min_visits times.
  """
  model: grid_model.GridModel
  y0: np.ndarray
  y1: np.ndarray
  visited: np.ndarray


def _curve(history: np.ndarray, visited: np.ndarray) -> ConvergenceCurve:
  """The curve of `history` `[R, 2N, S, m]` over states `visited` `[N, S]`."""
  half = history.shape[1] // 2
  kl = kl_divergence(history[:, :half], history[:, half:])  # [R, N, S]
  per_instance = (np.where(visited, kl, 0.0).sum(-1)
                  / np.maximum(visited.sum(-1), 1))  # [R, N]
  stderr = (per_instance.std(1, ddof=1) / np.sqrt(per_instance.shape[1])
            if per_instance.shape[1] > 1 else np.zeros(per_instance.shape[0]))
  return ConvergenceCurve(tuple(float(v) for v in per_instance.mean(1)),
                          tuple(float(v) for v in stderr))


def convergence(rule: rule_base.UpdateRule,
                untrained_rule: rule_base.UpdateRule,
                env: grid_world.TabularGridWorld, instances: np.ndarray,
                num_updates: int, record_every: int, *, learning_rate: float,
                kl_cost: float, gamma: float = value_horizons.GAMMA,
                init_stddev: float = INIT_STDDEV, num_envs: int = 16,
                unroll_length: int = 20,
                temperature: float = y_probe.NEAR_OPTIMAL_TEMPERATURE,
                min_visits: int = y_probe.MIN_VISITS, seed: int = 0,
                jit_compile: bool = True) -> Tuple[Convergence, Example]:
  """Runs Figure 6's analysis (module docstring).

  Args:
    rule: the rule under test; it must read y.
    untrained_rule: a freshly initialised rule of the same sizes.
    env: a tabular grid world.
    instances: `[N, M]` its instances.
    num_updates: updates of T x B steps per agent.
    record_every: read y every this many updates.
    learning_rate, kl_cost: the agent's alpha_lr and alpha_y.
    gamma: the discount of the updates and of the near-optimal policy.
    init_stddev: of the initial y logits.
    num_envs, unroll_length: B and T.
    temperature: of the near-optimal policies.
    min_visits: states visited fewer times (by either agent) are left out.
    seed: seed of the initial y, episodes and actions.
    jit_compile: compile the updates with XLA.

  Raises:
    ValueError: a rule reads no y, or the rules' m differ.
  """
  m = rule.prediction_size
  if m is None or untrained_rule.prediction_size != m:
    raise ValueError(f"Both rules must read y of one size; got m = {m} and "
                     f"{untrained_rule.prediction_size}")
  models, policies = value_horizons.near_optimal_policies(
      env, instances, gamma, temperature)
  pairs = np.concatenate([instances, instances])
  pair_policies = np.concatenate([policies, policies])
  runs = [y_probe.evaluate_policies(
      r, env, pairs, pair_policies, gamma, num_updates, prediction_size=m,
      learning_rate=learning_rate, kl_cost=kl_cost, num_envs=num_envs,
      unroll_length=unroll_length, seed=seed, record_every=record_every,
      prediction_init_stddev=init_stddev, jit_compile=jit_compile)
          for r in (rule, untrained_rule)]
  half = len(instances)
  visits = runs[0].visits
  visited = (visits[:half] >= min_visits) & (visits[half:] >= min_visits)
  history = runs[0].y_history
  result = Convergence(
      env=env.spec.name, action_space=env.spec.action_space,
      gamma=float(gamma), instances=half, init_stddev=float(init_stddev),
      recorded_updates=tuple(int(u) for u in runs[0].recorded_updates),
      env_steps_per_update=num_envs * unroll_length,
      states=float(visited.sum(-1).mean()),
      rule=_curve(history, visited),
      untrained_rule=_curve(runs[1].y_history, visited))
  example = Example(model=models[0], y0=history[[0, -1], 0],
                    y1=history[[0, -1], half], visited=visited[0])
  return result, example
