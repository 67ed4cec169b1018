"""A group of L lifetimes that share one environment (and so one set of shapes).

Each lifetime (Algorithm 1) has its own environment instance, agent parameters
theta with their optimiser state, agent hyperparameters alpha = (alpha_lr, alpha_y)
drawn by the bandit (Eq. 6), a discount gamma and a policy-entropy cost beta0
drawn from Table 2's sets, a critic used only by the meta-objective (Appendix B.1),
and a count of the environment steps it has lived. All of it sits on a leading
lifetime axis L (DESIGN.md) and is stored in variables, so a whole population is
checkpointed by `tf.train.Checkpoint` and read into tensors for a meta-step.

Grid worlds sample their action space per lifetime (Appendix A.1); here each group
has one action space, and a population splits a grid world's lifetimes between a
9-action and an 18-action group, which gives every lifetime slot a fixed variant
instead of a fresh draw at each reset. This keeps one set of shapes per group, as
the batched agent needs.
"""

import functools
from typing import Any, NamedTuple, Optional, Sequence

import tensorflow as tf

from lpg_tf import agents
from lpg_tf import envs
from lpg_tf import rng as lpg_rng
from lpg_tf.envs import base as env_base
from lpg_tf.learning import optimizers
from lpg_tf.learning import rollout

GAMMAS = (0.995, 0.99)  # Table 2: sampled per lifetime.
POLICY_ENTROPY_COSTS = (0.01, 0.02)  # Table 2, beta0: sampled per lifetime.


class LifetimeState(NamedTuple):
  """Everything a group's lifetimes carry between meta-steps.

  Attributes:
    params: theta, `{name: [L, ...]}`.
    opt_state: theta's optimiser state.
    critic_params: the meta-objective's critic, `{name: [L, ...]}` (its value is
      the network's scalar head).
    critic_opt_state: the critic's optimiser state.
    actor: acting state, environment batch `L * B`.
    learning_rate: `[L]` alpha_lr.
    kl_cost: `[L]` alpha_y.
    gamma: `[L]` discount factor.
    entropy_cost: `[L]` beta0 of Eq. 4.
    arm: `[L]` int32 the bandit arm alpha came from.
    steps: `[L]` int64 environment steps lived.
    recent_return: `[L]` moving average of the returns of completed episodes,
      the lifetime's "final return" reported to the bandit when it ends.
    has_return: `[L]` 1.0 once `recent_return` has seen an episode.
  """
  params: Any
  opt_state: Any
  critic_params: Any
  critic_opt_state: Any
  actor: rollout.ActorState
  learning_rate: tf.Tensor
  kl_cost: tf.Tensor
  gamma: tf.Tensor
  entropy_cost: tf.Tensor
  arm: tf.Tensor
  steps: tf.Tensor
  recent_return: tf.Tensor
  has_return: tf.Tensor


RETURN_AVERAGING = 0.1  # weight of the newest update in `recent_return`.


def _choice(seed: tf.Tensor, values: Sequence[float], num: int) -> tf.Tensor:
  """`num` uniform draws from `values`, as float32 `[num]`."""
  index = lpg_rng.integers([num], seed, len(values))
  return tf.gather(tf.constant(values, tf.float32), index)


def _select(mask: tf.Tensor, new: Any, old: Any) -> Any:
  """Per-lifetime choice over a nest whose leaves all lead with L."""
  def pick(n, o):
    return tf.where(tf.reshape(mask, [-1] + [1] * (len(o.shape) - 1)), n, o)
  return tf.nest.map_structure(pick, new, old)


class LifetimeGroup(tf.Module):
  """L lifetimes of one environment: static structure plus state variables."""

  def __init__(self, env_name: str, action_space: Optional[str],
               num_lifetimes: int, num_envs: int, prediction_size: int,
               lifetime_steps: int, seed: int, name: Optional[str] = None):
    """Builds the group and its state variables (inside a strategy scope).

    Args:
      env_name: one of lpg_tf.envs.NAMES.
      action_space: grid worlds: envs.MOVE or envs.MOVE_AND_COLLECT; else None.
      num_lifetimes: L.
      num_envs: B, environments per lifetime (64 in the paper).
      prediction_size: m.
      lifetime_steps: environment steps after which a lifetime ends (Table 3).
      seed: seed of the group's initial lifetimes.
      name: module name.
    """
    super().__init__(name=name or env_name.replace("/", "_"))
    self.env_name = env_name
    self.env = envs.make(env_name, action_space)
    self.preset = agents.preset_for(env_name)
    self.num_lifetimes = num_lifetimes
    self.num_envs = num_envs
    self.lifetime_steps = lifetime_steps
    self.optimiser = optimizers.Optimiser(self.preset.optimiser)
    # The critic exists only for the meta-gradient's variance (Appendix B.1). Adam
    # keeps it stable where Table 3's tabular SGD rates (20-80) would diverge on
    # states visited many times in one batch.
    self.critic_optimiser = optimizers.Optimiser(optimizers.ADAM)
    self.agent = agents.build_agent(self.env.spec, num_lifetimes, seed=[seed, 1],
                                    prediction_size=prediction_size)
    self.critic = agents.build_agent(self.env.spec, num_lifetimes,
                                     seed=[seed, 2], prediction_size=1)
    default_lr = self.preset.learning_rates[len(self.preset.learning_rates) // 2]
    default_kl = self.preset.kl_costs[len(self.preset.kl_costs) // 2]
    initial = self.fresh_state(
        tf.constant([seed, 3], tf.int32),
        tf.fill([num_lifetimes], default_lr), tf.fill([num_lifetimes], default_kl),
        tf.zeros([num_lifetimes], tf.int32))
    # A partial, not the nest itself: tf.Module would wrap the nest's dicts for
    # tracking, and tf.function cannot trace the wrappers.
    self._pack = functools.partial(tf.nest.pack_sequence_as, initial)
    self._variables = [tf.Variable(x, trainable=False, name="state")
                       for x in tf.nest.flatten(initial)]

  @property
  def name_for_logs(self) -> str:
    space = self.env.spec.action_space
    return self.env_name if space is None else f"{self.env_name}[{space}]"

  def read(self) -> LifetimeState:
    """The current state as tensors."""
    return self._pack([tf.convert_to_tensor(v) for v in self._variables])

  def write(self, state: LifetimeState) -> None:
    """Stores `state` in the variables."""
    for variable, value in zip(self._variables, tf.nest.flatten(state)):
      variable.assign(value)

  def fresh_state(self, seed: tf.Tensor, learning_rate: tf.Tensor,
                  kl_cost: tf.Tensor, arm: tf.Tensor) -> LifetimeState:
    """New lifetimes for every slot: theta_0 ~ p(theta_0), E ~ p(E), gamma, beta0."""
    seeds = tf.unstack(lpg_rng.split(seed, 6))
    num = self.num_lifetimes
    params = self.agent.init_params(seeds[0])
    critic_params = self.critic.init_params(seeds[1])
    instances = tf.nest.map_structure(
        lambda x: tf.repeat(x, self.num_envs, axis=0),
        self.env.sample_instances(seeds[2], num))
    actor = rollout.initial_actor_state(self.env, instances, seeds[3])
    return LifetimeState(
        params=params, opt_state=self.optimiser.init(params),
        critic_params=critic_params,
        critic_opt_state=self.critic_optimiser.init(critic_params), actor=actor,
        learning_rate=tf.cast(learning_rate, tf.float32),
        kl_cost=tf.cast(kl_cost, tf.float32),
        gamma=_choice(seeds[4], GAMMAS, num),
        entropy_cost=_choice(seeds[5], POLICY_ENTROPY_COSTS, num),
        arm=tf.cast(arm, tf.int32), steps=tf.zeros([num], tf.int64),
        recent_return=tf.zeros([num]), has_return=tf.zeros([num]))

  def reset_lifetimes(self, state: LifetimeState, mask: tf.Tensor,
                      seed: tf.Tensor, learning_rate: tf.Tensor,
                      kl_cost: tf.Tensor, arm: tf.Tensor) -> LifetimeState:
    """Replaces the lifetimes where `mask` `[L]` is True by fresh ones."""
    fresh = self.fresh_state(seed, learning_rate, kl_cost, arm)
    env_mask = tf.repeat(mask, self.num_envs)
    actor = rollout.ActorState(
        env_state=env_base.select_envs(env_mask, fresh.actor.env_state,
                                       state.actor.env_state),
        timestep=tf.nest.map_structure(
            lambda n, o: env_base.select_envs_tensor(env_mask, n, o),
            fresh.actor.timestep, state.actor.timestep),
        episode_return=tf.where(env_mask, fresh.actor.episode_return,
                                state.actor.episode_return),
        rng=state.actor.rng)
    per_lifetime = [name for name in LifetimeState._fields if name != "actor"]
    chosen = {name: _select(mask, getattr(fresh, name), getattr(state, name))
              for name in per_lifetime}
    return LifetimeState(actor=actor, **chosen)
