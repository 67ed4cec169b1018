"""The policy-evaluation probe of y (Section 4.3, Figure 4).

"We updated only y using the LPG while fixing the policy parameters, which is
analogous to policy evaluation." For one tabular grid world instance and fixed
policies (uniform random, and a near-optimal softmax of Q*), an update rule
trains a tabular agent's y(s) from scratch by Eq. 2 while pi stays as given;
then y(s) of every state visited often enough is compared with the policy's
true value V^pi(s) (`grid_values`) by `value_regression`'s statistics.

How only y moves: `PolicyEvaluationAgent` is the tabular agent of Table 3 whose
policy columns are a constant, not a parameter. Its parameters are the y and
scalar-head columns of the table, so the learner's ordinary update
(`update_step.update` through `learner.Learner`) is Eq. 2 restricted to the
prediction head: the policy term has no parameter to move, and the KL term
moves y exactly as in a full agent, whose table rows are independent.

Two references make the numbers mean something, on the same data (the policy is
fixed and the seeds are shared, so every run sees the same trajectories):
  * the same probe with a freshly initialised LPG of the same sizes: what y
    looks like when the rule has learned nothing. Not a blank: its random
    backward LSTM sums future rewards into y_hat, so y varies a little with
    the value, and least squares can decode that however small it is;
  * a TD(lambda) value learner (A2C's critic with the policy held fixed,
    `rules.a2c`), whose scalar head estimates V^pi: what a value learner
    reaches with this much data.
"""

import json
from typing import Any, Dict, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from lpg_tf import agents
from lpg_tf import envs
from lpg_tf import types
from lpg_tf.analysis import grid_values
from lpg_tf.analysis import value_regression
from lpg_tf.envs import grid_model
from lpg_tf.learning import learner as learner_lib
from lpg_tf.learning import optimizers
from lpg_tf.rules import a2c
from lpg_tf.rules import base as rule_base

UNIFORM = "uniform"
NEAR_OPTIMAL = "near_optimal"
POLICIES = (UNIFORM, NEAR_OPTIMAL)
# Softmax temperature of the near-optimal policy: on tabular/dense at
# gamma = 0.99 its values lie within 0.3 of V* (V* between 9 and 11).
NEAR_OPTIMAL_TEMPERATURE = 0.01
# Floor of the fixed policy's probabilities inside its logits, so that
# log pi and H(pi) stay finite where a softmax underflowed to 0.
MIN_POLICY_PROBABILITY = 1e-20
# States visited fewer times than this (as s_t of a trajectory) are left out of
# the statistics: their y has barely moved from its initialisation.
MIN_VISITS = 10


class PolicyEvaluationAgent:
  """The tabular agent of Table 3 with its policy held fixed.

  L lifetimes, one fixed policy each. `params` (what the learner updates) are
  `{"prediction": [L, S, m], "baseline": [L, S, 1]}`, initialised like the
  tabular agent's table; `apply` puts the fixed policy logits in front of them
  and reads the table with the tabular agent's own `apply`.
  """

  def __init__(self, spec: envs.EnvSpec, policies: np.ndarray,
               prediction_size: int, seed: int,
               prediction_init_stddev: Optional[float] = None):
    """Builds the agent.

    Args:
      spec: a tabular environment's spec.
      policies: `[L, S, A]` pi(a|s) of each lifetime.
      prediction_size: m.
      seed: seed of the initial y and scalar head.
      prediction_init_stddev: None: y's logits start like the tabular agent's
        table (nearly uniform y); else they are drawn from N(0, stddev^2) by
        `seed`, so that y starts far from uniform and differs across lifetimes
        (Figure 6's randomly initialised predictions).
    """
    num_lifetimes = policies.shape[0]
    self._network = agents.build_agent(spec, num_lifetimes=num_lifetimes,
                                       seed=seed,
                                       prediction_size=prediction_size)
    table = self._network.params["table"]
    num_actions = spec.num_actions
    self._policy_logits = tf.constant(
        np.log(np.maximum(policies, MIN_POLICY_PROBABILITY)), tf.float32)
    prediction = table[..., num_actions:num_actions + prediction_size]
    if prediction_init_stddev is not None:
      prediction = np.random.default_rng(seed).normal(
          0.0, prediction_init_stddev, tuple(prediction.shape)).astype(np.float32)
    self._params = {
        "prediction": tf.Variable(prediction),
        "baseline": tf.Variable(table[..., num_actions + prediction_size:]),
    }

  @property
  def params(self) -> Dict[str, tf.Variable]:
    return dict(self._params)

  def apply(self, params: Dict[str, tf.Tensor],
            observation: tf.Tensor) -> types.AgentOutput:
    """The tabular agent's outputs with the fixed policy; `[L, *batch, ...]`."""
    table = tf.concat([self._policy_logits, params["prediction"],
                       params["baseline"]], axis=-1)
    return self._network.apply({"table": table}, observation)

  def assign(self, params: Dict[str, tf.Tensor]) -> None:
    for key, variable in self._params.items():
      variable.assign(params[key])


class VisitCountingSource(learner_lib.RolloutSource):
  """A rollout source that also counts, per lifetime, how often each state is
  s_t of a trajectory (t < T: the steps whose y the update trains)."""

  def __init__(self, env: envs.Environment, num_lifetimes: int,
               num_envs: int, unroll_length: int, seed: int, instances: Any):
    super().__init__(env, num_lifetimes, num_envs, unroll_length, seed,
                     instances)
    self._shape = [num_lifetimes, env.spec.num_states]

  def initial_state(self):
    return super().initial_state(), tf.zeros(self._shape, tf.int32)

  def trajectory(self, apply_fn, params, state, pulled):
    actor_state, visits = state
    trajectory, actor_state = super().trajectory(apply_fn, params, actor_state,
                                                 pulled)
    states = trajectory.observation[:, :-1]  # [L, T, B]
    lifetime = tf.range(self._shape[0])[:, None, None]
    index = tf.reshape(lifetime * self._shape[1] + states, [-1])
    counts = tf.math.unsorted_segment_sum(
        tf.ones_like(index), index, self._shape[0] * self._shape[1])
    return trajectory, (actor_state, visits + tf.reshape(counts, self._shape))


class PolicyEvaluation(NamedTuple):
  """What a rule made of y under fixed policies, per lifetime (policy).

  Attributes:
    y: `[L, S, m]` y(s) = softmax of the trained prediction logits.
    value_estimate: `[L, S]` the scalar head (trained by a value rule only).
    visits: `[L, S]` how often each state was s_t of a trajectory.
    env_steps: environment steps per lifetime.
    recorded_updates: `[R]` the update counts at which y_history and
      value_history were taken (0: before the first update); empty unless
      `record_every` was given.
    y_history: `[R, L, S, m]` y after each of `recorded_updates`.
    value_history: `[R, L, S]` the scalar head after each of them.
  """
  y: np.ndarray
  value_estimate: np.ndarray
  visits: np.ndarray
  env_steps: int
  recorded_updates: np.ndarray
  y_history: np.ndarray
  value_history: np.ndarray


def recording_points(num_updates: int, record_every: Optional[int]
                     ) -> np.ndarray:
  """`[R]` update counts 0, record_every, 2 record_every, ..., num_updates
  (the last always included); empty for `record_every` None."""
  if record_every is None:
    return np.zeros([0], np.int64)
  if record_every <= 0:
    raise ValueError(f"record_every must be positive, got {record_every}")
  points = np.arange(0, num_updates + 1, record_every)
  return np.union1d(points, [num_updates]).astype(np.int64)


def evaluate_policies(rule: rule_base.UpdateRule, env: envs.Environment,
                      instances: Any, policies: np.ndarray,
                      gamma: float, num_updates: int, *, prediction_size: int,
                      learning_rate: float, kl_cost: float, num_envs: int = 64,
                      unroll_length: int = 20, seed: int = 0,
                      record_every: Optional[int] = None,
                      prediction_init_stddev: Optional[float] = None,
                      jit_compile: bool = True) -> PolicyEvaluation:
  """`num_updates` updates by `rule` of y (and the scalar head) only.

  Args:
    rule: the update rule (LPG, an exported rule, or a value rule).
    env: a tabular environment.
    instances: the object cells every lifetime plays (one
      `env.sample_instances` row, `[M]`), or one row per lifetime (`[L, M]`).
    policies: `[L, S, A]` the fixed policies, one lifetime each.
    gamma: the discount factor the rule is given.
    num_updates: updates of T x B steps each.
    prediction_size: m.
    learning_rate: alpha_lr of the agent's SGD (Table 3: tabular agents).
    kl_cost: alpha_y of Eq. 2.
    num_envs, unroll_length: B and T.
    seed: seed of the initial y, of episodes and of actions; runs with one
      seed and one policy see the same trajectories whatever the rule.
    record_every: also keep y and the scalar head every this many updates
      (`recording_points`), for analyses over the course of the updates.
    prediction_init_stddev: see `PolicyEvaluationAgent`.
    jit_compile: compile the update with XLA.
  """
  expected = (env.spec.num_states, env.spec.num_actions)
  if policies.ndim != 3 or policies.shape[1:] != expected:
    raise ValueError(f"policies must be [L, S, A] with [S, A] = "
                     f"{list(expected)}, got {list(policies.shape)}")
  num_lifetimes = policies.shape[0]
  instances = np.asarray(instances, np.int32)
  if instances.ndim == 1:
    instances = np.tile(instances, [num_lifetimes, 1])
  if instances.ndim != 2 or instances.shape[0] != num_lifetimes:
    raise ValueError(f"instances must be [M] or [L = {num_lifetimes}, M], got "
                     f"{list(instances.shape)}")
  agent = PolicyEvaluationAgent(env.spec, policies, prediction_size, seed,
                                prediction_init_stddev)
  source = VisitCountingSource(env, num_lifetimes, num_envs, unroll_length,
                                seed, tf.constant(instances))
  learner = learner_lib.Learner(
      agent, rule, optimizers.SGD,
      learning_rate=np.full([num_lifetimes], learning_rate, np.float32),
      kl_cost=np.full([num_lifetimes], kl_cost, np.float32),
      gamma=np.full([num_lifetimes], gamma, np.float32), source=source,
      jit_compile=jit_compile)
  points = recording_points(num_updates, record_every)
  y_history, value_history = [], []

  def record(params):
    y_history.append(tf.nn.softmax(params["prediction"]).numpy())
    value_history.append(params["baseline"].numpy()[..., 0])

  if points.size and points[0] == 0:
    record(agent.params)
  for update in range(1, num_updates + 1):
    learner.step()
    if update in points:
      record(learner.params)
  params = learner.params
  _, visits = learner.source_state
  size = (0, num_lifetimes, env.spec.num_states)
  return PolicyEvaluation(
      y=tf.nn.softmax(params["prediction"]).numpy(),
      value_estimate=params["baseline"].numpy()[..., 0],
      visits=visits.numpy(),
      env_steps=num_updates * source.env_steps_per_update,
      recorded_updates=points,
      y_history=(np.stack(y_history) if y_history
                 else np.zeros(size + (prediction_size,), np.float32)),
      value_history=(np.stack(value_history) if value_history
                     else np.zeros(size, np.float32)))


class PolicyProbe(NamedTuple):
  """The probe's numbers for one fixed policy.

  Attributes:
    policy: UNIFORM or NEAR_OPTIMAL.
    states: how many states were visited at least `min_visits` times (the
      statistics are over these).
    true_value_range: (min, max) of V^pi over those states.
    rule: y of the rule under test against V^pi.
    untrained_rule: y of a freshly initialised LPG of the same sizes.
    td: the TD(lambda) value estimate against V^pi.
  """
  policy: str
  states: int
  true_value_range: Tuple[float, float]
  rule: value_regression.PredictionStatistics
  untrained_rule: value_regression.PredictionStatistics
  td: value_regression.ScalarStatistics


class ProbeResult(NamedTuple):
  """The probe's numbers (written by `write_json`).

  Attributes:
    env: the environment's name.
    action_space: its action space.
    instance: the object cells.
    gamma: the discount factor of the rule and of V^pi.
    env_steps: environment steps per policy and rule.
    prediction_size: m.
    max_entropy: ln m, the entropy of a uniform y.
    min_visits: the statistics' visit threshold.
    policies: one PolicyProbe per policy of POLICIES.
  """
  env: str
  action_space: str
  instance: Tuple[int, ...]
  gamma: float
  env_steps: int
  prediction_size: int
  max_entropy: float
  min_visits: int
  policies: Tuple[PolicyProbe, ...]


class Probe(NamedTuple):
  """The probe's numbers and the arrays behind them (for pictures).

  Attributes:
    result: the numbers.
    model: the instance's exact model.
    policies: `[P, S, A]` the fixed policies, in the order of POLICIES.
    true_values: `[P, S]` V^pi.
    rule, untrained_rule, td: what each rule made of y (or of the value).
  """
  result: ProbeResult
  model: grid_model.GridModel
  policies: np.ndarray
  true_values: np.ndarray
  rule: PolicyEvaluation
  untrained_rule: PolicyEvaluation
  td: PolicyEvaluation


def fixed_policies(model: grid_model.GridModel, gamma: float,
                   temperature: float = NEAR_OPTIMAL_TEMPERATURE) -> np.ndarray:
  """`[2, S, A]`: the uniform policy and softmax(Q* / temperature)."""
  q = grid_values.optimal_values(model, gamma).action_values
  return np.stack([grid_values.uniform_policy(model),
                   grid_values.softmax_policy(q, temperature)])


def probe(rule: rule_base.UpdateRule, untrained_rule: rule_base.UpdateRule,
          env: envs.Environment, instance: Sequence[int], gamma: float,
          num_updates: int, *, learning_rate: float, kl_cost: float,
          num_envs: int = 64, unroll_length: int = 20,
          temperature: float = NEAR_OPTIMAL_TEMPERATURE,
          min_visits: int = MIN_VISITS, seed: int = 0,
          value_rule: Optional[rule_base.UpdateRule] = None,
          value_learning_rate: Optional[float] = None,
          jit_compile: bool = True) -> Probe:
  """Runs the probe (module docstring) for both POLICIES.

  Args:
    rule: the rule under test; it must read y (`prediction_size` set).
    untrained_rule: a freshly initialised rule of the same sizes.
    env: a tabular grid world.
    instance: its object cells.
    gamma: discount factor of the updates and of V^pi, in [0, 1).
    num_updates: updates of T x B steps per rule.
    learning_rate, kl_cost: the agent's alpha_lr and alpha_y.
    num_envs, unroll_length: B and T.
    temperature: of the near-optimal policy softmax(Q* / temperature).
    min_visits: states visited fewer times are left out of the statistics.
    seed: seed of the initial y, episodes, actions and held-out split.
    value_rule: the value learner of the reference; default A2C's critic
      (TD(lambda) with A2C's lambda), whose policy terms do nothing here.
    value_learning_rate: the value learner's alpha_lr; default
      `learning_rate`.
    jit_compile: compile the updates with XLA.

  Raises:
    ValueError: a rule reads no y, the two rules disagree on m, or a policy
      visited no state `min_visits` times.
  """
  m = rule.prediction_size
  if m is None or untrained_rule.prediction_size != m:
    raise ValueError(f"The rules must read y of one size; got m = {m} and "
                     f"{untrained_rule.prediction_size}")
  model = grid_model.tabular_model(env, instance)
  policies = fixed_policies(model, gamma, temperature)
  true_values = np.stack([grid_values.policy_values(model, p, gamma)
                          for p in policies])
  value_learning_rate = (learning_rate if value_learning_rate is None
                         else value_learning_rate)
  runs = [evaluate_policies(
      r, env, instance, policies, gamma, num_updates, prediction_size=m,
      learning_rate=lr, kl_cost=kl_cost, num_envs=num_envs,
      unroll_length=unroll_length, seed=seed, jit_compile=jit_compile)
          for r, lr in ((rule, learning_rate), (untrained_rule, learning_rate),
                        (value_rule or a2c.A2C(), value_learning_rate))]
  per_policy = []
  for index, name in enumerate(POLICIES):
    visited = runs[0].visits[index] >= min_visits
    if not visited.any():
      raise ValueError(f"No state was visited {min_visits} times under the "
                       f"{name} policy: raise num_updates")
    values = true_values[index, visited]
    fit = value_regression.held_out_split(int(visited.sum()), seed)
    per_policy.append(PolicyProbe(
        policy=name, states=int(visited.sum()),
        true_value_range=(float(values.min()), float(values.max())),
        rule=value_regression.prediction_statistics(
            runs[0].y[index, visited], values, fit),
        untrained_rule=value_regression.prediction_statistics(
            runs[1].y[index, visited], values, fit),
        td=value_regression.scalar_statistics(
            runs[2].value_estimate[index, visited], values, fit)))
  result = ProbeResult(
      env=env.spec.name, action_space=env.spec.action_space,
      instance=tuple(int(c) for c in instance), gamma=float(gamma),
      env_steps=runs[0].env_steps, prediction_size=m,
      max_entropy=float(np.log(m)), min_visits=min_visits,
      policies=tuple(per_policy))
  return Probe(result, model, policies, true_values, *runs)


def plain(value: Any) -> Any:
  """NamedTuples as dicts, tuples as lists, numpy arrays and scalars as lists
  and numbers, dicts' values, recursively (for JSON)."""
  if hasattr(value, "_asdict"):
    return {k: plain(v) for k, v in value._asdict().items()}
  if isinstance(value, dict):
    return {k: plain(v) for k, v in value.items()}
  if isinstance(value, (tuple, list)):
    return [plain(v) for v in value]
  if isinstance(value, (np.ndarray, np.generic)):
    return value.tolist()
  return value


def write_json(result: ProbeResult, path: str) -> str:
  """Writes `result` as JSON to `path`; returns `path`."""
  with open(path, "w") as f:
    json.dump(plain(result), f, indent=2, allow_nan=True)
    f.write("\n")
  return path
