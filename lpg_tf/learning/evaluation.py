"""How well an update rule trains fresh agents: L lifetimes, a budget, a return.

Meta-testing (Section 4.5) trains agents from scratch with a fixed rule and
reports the return they reach; validation during meta-training (Appendix B.2:
the best eta is selected by validation) does the same on held-out instances.
Both go through `Evaluator`: L independent lifetimes of one environment, each
with its own alpha_lr, alpha_y and gamma, trained side by side by any
`rules.base.UpdateRule` (the LPG module being meta-trained, A2C, an exported
rule) for a budget of environment steps, as one batched program. Scoring a
grid of learning rates x seeds is one `run` with L = grid x seeds.

An `Evaluator` is built once and `run` many times: the compiled step
(`learner.Learner`) takes theta and the hyperparameters as arguments, so a new
run restarts theta_0, the optimiser state and the acting state without tracing
again, and an LPG rule's variables are read at every step (a run after a
meta-update uses the new eta).

The score of a lifetime is `final_returns`: the mean over the last tenth of
the logging points (LOG_POINTS per run) of the return of the episodes that
ended between points, the same number `launchers/train_agent.py` reports.

Environments: the in-graph ones of Appendix A (Table 3's agent, acting inside
the compiled step) and the MinAtar games (`minatar/<game>`: MinAtar's agent,
`agents.MINATAR`, acting in Python-stepped games through
`host_rollout.HostRolloutSource`), behind the same `run`.
"""

import math
from typing import Any, NamedTuple, Optional, Sequence, Union

import numpy as np
import tensorflow as tf

from lpg_tf import agents
from lpg_tf import envs
from lpg_tf.envs import minatar
from lpg_tf.learning import host_rollout
from lpg_tf.learning import learner as learner_lib
from lpg_tf.learning import optimizers
from lpg_tf.learning import rollout
from lpg_tf.rules import base as rule_base

# A2C's agent learning rates, by the Table 3 optimiser of the environment; chosen
# by a sweep over A2C_SWEPT_LEARNING_RATES on the 15 training environments
# (issue 3 note).
A2C_LEARNING_RATES = {optimizers.SGD: 40.0, optimizers.ADAM: 0.002}
A2C_SWEPT_LEARNING_RATES = {optimizers.SGD: (10.0, 20.0, 40.0, 80.0),
                            optimizers.ADAM: (0.0003, 0.001, 0.003)}
DEFAULT_PREDICTION_SIZE = 30  # m (Section 4.1), for rules that read no y.
LOG_POINTS = 100  # Logging points per run (curve.png's resolution).


def log_every(num_updates: int) -> int:
  """Updates between logging points giving about LOG_POINTS points."""
  return max(1, num_updates // LOG_POINTS)


def final_returns(points: np.ndarray) -> np.ndarray:
  """Per seed, the mean of the last 10% of logging points that saw episodes end.

  The one summary of a training run's end, for toy environments and Atari
  alike. A logging point's return is the mean over the episodes that ended
  since the previous point; points where none ended (NaN) are left out before
  taking the last 10%, because long episodes end only every few points and a
  tail of NaN would otherwise leave a seed without a final return, or with one
  from fewer points than another seed's. At least one point is used.

  Args:
    points: `[logging points, seeds]` returns, NaN where a seed ended no
      episode since the previous point.

  Returns:
    `[seeds]`, NaN for a seed that never ended an episode.
  """
  points = np.asarray(points, np.float64)
  if points.ndim != 2:
    raise ValueError(f"points must be [logging points, seeds], got {points.shape}")
  finals = []
  for column in points.T:
    finite = column[np.isfinite(column)]
    finals.append(finite[-max(1, len(finite) // 10):].mean() if finite.size
                  else np.nan)
  return np.array(finals)


class Evaluation(NamedTuple):
  """What a run of L fresh lifetimes reached.

  Attributes:
    final_returns: `[L]` each lifetime's `final_returns`, NaN for one that
      never ended an episode.
    points: `[logging points, L]` the curve: mean return of the episodes that
      ended since the previous point (NaN where none did).
    env_steps: environment steps each lifetime took.
    point_steps: `[logging points]` environment steps per lifetime at each
      point (the curve's x).
  """
  final_returns: np.ndarray
  points: np.ndarray
  env_steps: int
  point_steps: np.ndarray


def _per_lifetime(name: str, value: Union[float, Sequence[float], np.ndarray],
                  num_lifetimes: int) -> np.ndarray:
  array = np.broadcast_to(np.asarray(value, np.float32), [num_lifetimes])
  if not np.all(np.isfinite(array)):
    raise ValueError(f"{name} must be finite, got {value}")
  return np.array(array)


class Evaluator:
  """L fresh lifetimes of one environment trained by a rule for `steps` steps.

  Usage:
    evaluator = Evaluator("tabular/dense", rules.make("a2c"), num_lifetimes=6,
                          steps=50_000, num_envs=16, num_seeds=2)
    result = evaluator.run(learning_rate=[20, 20, 40, 40, 80, 80],
                           kl_cost=0.5, gamma=0.99, seed=3)
    result.final_returns  # [6]: three learning rates x the same two seeds

  The agent is Table 3's for an Appendix A environment (`agents.preset_for`:
  torso and optimiser) and `agents.MINATAR`'s for a MinAtar game. For a given
  seed, an Appendix A environment's theta_0, instances, episodes and actions'
  noise are those of `launchers/train_agent.py --seed` with as many seeds; a
  MinAtar game's theta_0 is drawn the same way, its games are seeded from the
  key (`minatar.game_seeds`) and its actions from the key's second split.

  Settings x seeds: with `num_seeds` = S < L, the L lifetimes are L / S
  settings of the same S seeds: lifetime g * S + j starts from seed j's theta_0
  and instance (MinAtar: games), those lifetime j of an S-lifetime Evaluator
  gets from the same key, so a grid of hyperparameters is compared on common
  random numbers, and its best setting's seeds are the ones a run of S
  lifetimes repeats.
  """

  def __init__(self, env_name: str, rule: rule_base.UpdateRule,
               num_lifetimes: int, steps: int, num_envs: int,
               unroll_length: int = 20, action_space: Optional[str] = None,
               prediction_size: Optional[int] = None,
               jit_compile: bool = True, num_seeds: Optional[int] = None):
    """Builds the agents and the compiled step (traced on the first run).

    Args:
      env_name: one of lpg_tf.envs.NAMES or minatar.NAMES.
      rule: the update rule; an LPG module is read afresh at every step.
      num_lifetimes: L.
      steps: environment steps per lifetime, rounded up to whole updates of
        T x B.
      num_envs: B, parallel environments per lifetime.
      unroll_length: T, steps per update.
      action_space: grid worlds: envs.MOVE (default) or envs.MOVE_AND_COLLECT.
      prediction_size: m; default the rule's, else DEFAULT_PREDICTION_SIZE.
      jit_compile: compile the step (and MinAtar's policy step) with XLA.
      num_seeds: S, a divisor of L: lifetimes are settings x S seeds (class
        docstring); default L, every lifetime its own seed.

    Raises:
      ValueError: a size that is not positive, or S that does not divide L.
    """
    for name, value in (("num_lifetimes", num_lifetimes), ("steps", steps),
                        ("num_envs", num_envs), ("unroll_length", unroll_length)):
      if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    num_seeds = num_lifetimes if num_seeds is None else num_seeds
    if num_seeds <= 0 or num_lifetimes % num_seeds:
      raise ValueError(f"num_seeds={num_seeds} does not divide "
                       f"num_lifetimes={num_lifetimes}")
    self.num_lifetimes = num_lifetimes
    self.num_seeds = num_seeds
    prediction_size = (prediction_size or rule.prediction_size
                       or DEFAULT_PREDICTION_SIZE)
    self._is_minatar = env_name.startswith(minatar.PREFIX)
    if self._is_minatar:
      if action_space is not None:
        raise ValueError(f"{env_name} has no action_space choice")
      self.env = minatar.MinAtarVectorEnv(env_name, num_lifetimes * num_envs,
                                          seed=0)
      self.optimiser = agents.MINATAR.optimiser
      torso = agents.MINATAR.torso
    else:
      self.env = envs.make(env_name, action_space)
      self.optimiser = agents.preset_for(env_name).optimiser
      torso = None
    self._agent = agents.build_agent(self.env.spec, num_lifetimes, seed=0,
                                     prediction_size=prediction_size,
                                     torso=torso)
    # Draws the S seeds' theta_0, repeated over the settings.
    self._seed_agent = self._agent if num_seeds == num_lifetimes else (
        agents.build_agent(self.env.spec, num_seeds, seed=0,
                           prediction_size=prediction_size, torso=torso))
    if self._is_minatar:
      self._source = host_rollout.HostRolloutSource(
          self.env, self._agent.apply, num_lifetimes, unroll_length, seed=0,
          jit_compile=jit_compile)
    else:
      self._source = learner_lib.RolloutSource(
          self.env, num_lifetimes, num_envs, unroll_length, seed=0)
    self._num_envs = num_envs
    zeros = np.zeros([num_lifetimes], np.float32)
    self._learner = learner_lib.Learner(
        self._agent, rule, self.optimiser, learning_rate=zeros, kl_cost=zeros,
        gamma=zeros, source=self._source, jit_compile=jit_compile)
    self.num_updates = math.ceil(steps / self._source.env_steps_per_update)

  @property
  def env_steps(self) -> int:
    """Environment steps each lifetime takes in a run."""
    return self.num_updates * self._source.env_steps_per_update

  def _repeat_settings(self, x: tf.Tensor) -> tf.Tensor:
    """`[S, ...]` -> `[L, ...]`, seed j at rows g * S + j."""
    return tf.tile(x, [self.num_lifetimes // self.num_seeds]
                   + [1] * (len(x.shape) - 1))

  def _fresh_lifetimes(self, key: tf.Tensor) -> tuple[Any, Any]:
    """(theta_0, the source's state) of L new lifetimes drawn from `key`."""
    params = tf.nest.map_structure(self._repeat_settings,
                                   self._seed_agent.init_params(key))
    if not self._is_minatar:
      return params, self._source.fresh_state(key, self.num_seeds)
    game_seeds = minatar.game_seeds(np.asarray(key).astype(np.uint32).tolist(),
                                    self.num_seeds * self._num_envs)
    self.env.seed(game_seeds * (self.num_lifetimes // self.num_seeds))
    self._source.restart(rollout.split_seed(key)[1])
    return params, self._source.initial_state()

  def run(self, learning_rate: Union[float, Sequence[float], np.ndarray],
          kl_cost: Union[float, Sequence[float], np.ndarray],
          gamma: Union[float, Sequence[float], np.ndarray],
          seed: Union[int, Sequence[int]]) -> Evaluation:
    """Trains L fresh lifetimes for the budget; returns what they reached.

    Args:
      learning_rate, kl_cost, gamma: alpha_lr, alpha_y and gamma, a scalar for
        every lifetime or `[L]`.
      seed: theta_0, the instances, the episodes and the actions: an int `s`
        (the stateless key `[s, 0]`) or a `[2]` key. The same seed gives the
        same lifetimes whatever the rule and the hyperparameters.

    Raises:
      ValueError: a non-finite hyperparameter or one of the wrong length.
    """
    hyperparameters = [
        _per_lifetime(name, value, self.num_lifetimes)
        for name, value in (("learning_rate", learning_rate),
                            ("kl_cost", kl_cost), ("gamma", gamma))]
    params, source_state = self._fresh_lifetimes(learner_lib.seed_key(seed))
    self._learner.restart(params, *hyperparameters, source_state)
    every = log_every(self.num_updates)
    steps_per_update = self._source.env_steps_per_update
    return_sum = episodes = np.zeros([self.num_lifetimes])
    points, point_steps = [], []
    for update in range(1, self.num_updates + 1):
      metrics = self._learner.step()
      return_sum = return_sum + metrics["episode_return_sum"]
      episodes = episodes + metrics["episode_count"]
      if update % every and update != self.num_updates:
        continue
      with np.errstate(invalid="ignore", divide="ignore"):
        points.append(np.where(episodes > 0, return_sum / episodes, np.nan))
      point_steps.append(update * steps_per_update)
      return_sum = episodes = np.zeros([self.num_lifetimes])
    points = np.array(points)
    return Evaluation(final_returns(points), points, self.env_steps,
                      np.array(point_steps))

  @property
  def params(self) -> Any:
    """theta of the L lifetimes where the latest run left them, `[L, ...]`."""
    return self._learner.params

  @property
  def traces(self) -> int:
    """How many times the step was traced (1 after any number of runs)."""
    return self._learner.traces


def evaluate(env_name: str, rule: rule_base.UpdateRule,
             learning_rate: Union[float, Sequence[float], np.ndarray],
             kl_cost: Union[float, Sequence[float], np.ndarray],
             gamma: Union[float, Sequence[float], np.ndarray], steps: int,
             num_envs: int, seed: Union[int, Sequence[int]],
             num_lifetimes: Optional[int] = None, unroll_length: int = 20,
             action_space: Optional[str] = None,
             prediction_size: Optional[int] = None,
             jit_compile: bool = True) -> Evaluation:
  """One `Evaluator(...).run(...)`; L defaults to the length of the arrays."""
  if num_lifetimes is None:
    num_lifetimes = max(np.size(learning_rate), np.size(kl_cost),
                        np.size(gamma))
  return Evaluator(env_name, rule, num_lifetimes, steps, num_envs,
                   unroll_length, action_space, prediction_size,
                   jit_compile).run(learning_rate, kl_cost, gamma, seed)
