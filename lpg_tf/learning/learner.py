"""The learner: L lifetimes' theta updated by a rule from a trajectory source.

Acme's learner role, for meta-testing (Section 4.5: agents trained from scratch
by a fixed rule) and the A2C baseline. The learner owns theta and the optimiser
state of L independent lifetimes (each with its own alpha_lr, alpha_y, gamma);
its hot path is one compiled `_step` that takes the next trajectory
`[L, T, B, ...]` from a source and applies `update_step.update` (Eq. 2, Eq. 7
or A2C). The Python `step()` around it only counts and converts the metrics.

Sources behind one interface:
  * `RolloutSource`: acting in an in-graph environment (toy environments of
    Appendix A); the rollout runs inside the same compiled step as the update,
    so acting and learning cost one call.
  * `IteratorSource`: trajectories from an iterator, e.g. actors' unrolls
    streamed from Reverb (Atari). The batch is pulled in Python and passed to
    the compiled step: a dataset iterator's `get_next` cannot be compiled by
    XLA.
  * `host_rollout.HostRolloutSource`: acting with the current theta in games
    stepped in Python (MinAtar), in `pull`, before the compiled update.
"""

import abc
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from lpg_tf import types
from lpg_tf.envs import base as env_base
from lpg_tf.learning import optimizers
from lpg_tf.learning import rollout
from lpg_tf.learning import update_step
from lpg_tf.rules import base as rule_base


class TrajectorySource(abc.ABC):
  """Where the learner's trajectories come from.

  `pull(params)` runs in Python before each compiled step, with the current
  theta (reading a dataset, or acting in Python-stepped games); `trajectory()`
  runs inside it, with theta and the source's own state (an actor's
  environments), and returns the `[L, T, B, ...]` trajectory.
  """

  def initial_state(self) -> Any:
    """The state `trajectory` carries from one step to the next."""
    return ()

  def pull(self, params: Any) -> Any:
    """Host-side input of the next step, a nest of tensors (or ()).

    Args:
      params: the current theta, `[L, ...]` tensors (the step's input).
    """
    del params
    return ()

  @abc.abstractmethod
  def trajectory(self, apply_fn: rollout.ApplyFn, params: Any, state: Any,
                 pulled: Any) -> Tuple[types.Trajectory, Any]:
    """(trajectory `[L, T, B, ...]`, next state); traced into the step."""


class RolloutSource(TrajectorySource):
  """T steps of pi_theta in B in-graph environments per lifetime."""

  def __init__(self, env: env_base.Environment, num_lifetimes: int,
               num_envs: int, unroll_length: int,
               seed: Union[int, Sequence[int]], instances: Any = None):
    """A source whose `initial_state` draws its lifetimes from `seed`.

    Args:
      env: the environment (one group); lifetime l gets its own instance.
      num_lifetimes: L.
      num_envs: B, environments per lifetime (64 in the paper).
      unroll_length: T, steps per update (20 in the paper).
      seed: seed of instances, episodes and actions (see `fresh_state`).
      instances: the lifetimes' instances, a nest of `[L, ...]` tensors like
        `env.sample_instances` returns (an analysis of one given grid, say);
        None draws them from the seed. Episodes and actions come from the
        seed either way.
    """
    self._env = env
    self._num_lifetimes = num_lifetimes
    self._num_envs = num_envs
    self._unroll_length = unroll_length
    self._seed = seed
    self._instances = instances

  @property
  def env_steps_per_update(self) -> int:
    """Environment steps each lifetime takes per update: T x B."""
    return self._num_envs * self._unroll_length

  def initial_state(self) -> rollout.ActorState:
    return self.fresh_state(self._seed)

  def fresh_state(self, seed: Union[int, Sequence[int]],
                  num_seeds: Optional[int] = None) -> rollout.ActorState:
    """The acting state of new lifetimes: instances and episodes from `seed`.

    Args:
      seed: an int `s` (the stateless key `[s, 0]`) or a `[2]` key; the
        instances given to the constructor, if any, are kept.
      num_seeds: S, a divisor of L: the instances of S lifetimes are drawn
        (those an S-lifetime source draws from `seed`) and repeated L / S
        times, lifetime g * S + j getting instance j (settings x seeds of
        `evaluation.Evaluator`). Default L.
    """
    instance_seed, actor_seed = tf.unstack(rollout.split_seed(seed_key(seed)))
    instances = self._instances
    if instances is None:
      num_seeds = num_seeds or self._num_lifetimes
      instances = tf.nest.map_structure(
          lambda x: tf.tile(x, [self._num_lifetimes // num_seeds]
                            + [1] * (len(x.shape) - 1)),
          self._env.sample_instances(instance_seed, num_seeds))
    instances = tf.nest.map_structure(
        lambda x: tf.repeat(x, self._num_envs, axis=0), instances)
    return rollout.initial_actor_state(self._env, instances, actor_seed)

  def trajectory(self, apply_fn, params, state, pulled):
    del pulled
    return rollout.unroll(apply_fn, params, self._env, state,
                          self._unroll_length, self._num_lifetimes)


def seed_key(seed: Union[int, Sequence[int]]) -> tf.Tensor:
  """The `[2]` int32 stateless key of a seed: `[s, 0]` for an int `s`."""
  key = tf.convert_to_tensor(seed, tf.int32)
  return tf.stack([key, 0]) if key.shape.rank == 0 else key


class IteratorSource(TrajectorySource):
  """`types.Trajectory` batches `[L, T, B, ...]` from a Python iterator."""

  def __init__(self, iterator: Iterator[types.Trajectory]):
    self._iterator = iterator

  def pull(self, params: Any) -> types.Trajectory:
    del params
    return next(self._iterator)

  def trajectory(self, apply_fn, params, state, pulled):
    del apply_fn, params
    return pulled, state


class Learner:
  """Owns theta and optimiser state of L lifetimes; one update per `step()`.

  `restart` begins new lifetimes (theta, optimiser state, hyperparameters,
  acting state) on the same compiled step: theta and the hyperparameters are
  arguments of the step, not constants in it, so nothing is traced again.
  """

  def __init__(self, agent: Any, rule: rule_base.UpdateRule, optimiser: str,
               learning_rate: np.ndarray, kl_cost: np.ndarray,
               gamma: np.ndarray, source: TrajectorySource,
               jit_compile: bool = True):
    """Builds the learner with theta_0 from `agent`'s variables.

    Args:
      agent: an `AgentNetwork` for L lifetimes (lpg_tf.agents).
      rule: the update rule (A2C, or an LPG rule).
      optimiser: optimizers.SGD or optimizers.ADAM (Table 3 / Table 4).
      learning_rate, kl_cost, gamma: `[L]` per-lifetime alpha_lr, alpha_y and
        gamma.
      source: where trajectories come from.
      jit_compile: compile the step with XLA (3x faster than without for the
        Atari conv agent on CPU).
    """
    self._agent = agent
    self._rule = rule
    self._optimiser = optimizers.Optimiser(optimiser)
    self._source = source
    self._compiled_step = tf.function(self._step, jit_compile=jit_compile)
    self.restart(tf.nest.map_structure(tf.identity, agent.params),
                 learning_rate, kl_cost, gamma, source.initial_state())

  def restart(self, params: Any, learning_rate: np.ndarray,
              kl_cost: np.ndarray, gamma: np.ndarray,
              source_state: Any) -> None:
    """Starts L new lifetimes: theta_0 = `params`, a fresh optimiser state.

    Args:
      params: theta_0, `[L, ...]` tensors shaped like the agent's parameters.
      learning_rate, kl_cost, gamma: `[L]` per-lifetime alpha_lr, alpha_y and
        gamma.
      source_state: the source's state to start from (e.g.
        `RolloutSource.fresh_state(seed)`), shaped like its `initial_state()`.
    """
    self._params = params
    self._opt_state = self._optimiser.init(params)
    self._learning_rate = tf.constant(learning_rate, tf.float32)
    self._kl_cost = tf.constant(kl_cost, tf.float32)
    self._gamma = tf.constant(gamma, tf.float32)
    self._source_state = source_state
    self._num_updates = 0

  @property
  def num_updates(self) -> int:
    return self._num_updates

  @property
  def traces(self) -> int:
    """How many times the compiled step was traced."""
    return self._compiled_step.experimental_get_tracing_count()

  @property
  def params(self) -> Any:
    """Current theta, `[L, ...]` tensors."""
    return self._params

  @property
  def source_state(self) -> Any:
    """The trajectory source's state after the latest step (for a rollout,
    where acting left off)."""
    return self._source_state

  def _step(self, params, opt_state, source_state, pulled, learning_rate,
            kl_cost, gamma):
    trajectory, source_state = self._source.trajectory(
        self._agent.apply, params, source_state, pulled)
    params, opt_state, info = update_step.update(
        self._agent.apply, self._rule, self._optimiser, params, opt_state,
        trajectory, gamma, learning_rate, kl_cost)
    return_sum, count = rollout.completed_episode_stats(trajectory)
    shape = tf.shape(trajectory.action)  # [L, T, B]
    metrics = {"loss": info.loss, "policy_entropy": info.policy_entropy,
               "episode_return_sum": return_sum, "episode_count": count,
               "env_steps": tf.fill(shape[:1], shape[1] * shape[2])}
    return params, opt_state, source_state, metrics

  def step(self) -> Dict[str, np.ndarray]:
    """One trajectory and one update for every lifetime.

    Returns:
      `[L]` numpy arrays: "loss" (the agent loss before the update),
      "policy_entropy" (mean H(pi) over the trajectory), "episode_return_sum"
      and "episode_count" (undiscounted returns summed, and number, of the
      episodes that ended in the trajectory), "env_steps" (T x B).
    """
    self._params, self._opt_state, self._source_state, metrics = (
        self._compiled_step(self._params, self._opt_state, self._source_state,
                            self._source.pull(self._params),
                            self._learning_rate, self._kl_cost, self._gamma))
    self._num_updates += 1
    return {name: value.numpy() for name, value in metrics.items()}

  def sync_agent(self) -> None:
    """Writes the current theta into the agent module's variables."""
    self._agent.assign(self._params)
