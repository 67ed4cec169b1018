"""Delayed chain MDPs (Appendix A.3), in-graph and batched.

The agent makes a binary choice at every step of a chain; only the first choice
matters: it decides whether the reward at the end of the episode is +1 or -1.
Appendix A.3 fixes the action count, the chain-length ranges, which variants
have noisy rewards and the distractor observation; the other details are ours:

  * Lifetime instance: the chain length L, drawn uniformly from
    `[min_length, max_length]` (both inclusive) by `sample_instances`, fixed
    for the lifetime.
  * Episode: `reset` draws the correct first action c in {0, 1} uniformly,
    which picks one of the two chain MDPs. Every episode lasts exactly L
    transitions and then terminates (discount 0, truncated False); episodes
    never reach the step limit `max_episode_steps = max_length`.
  * Rewards: the L-th transition pays +1 if the first action was c, else -1.
    In the noisy variants every earlier transition pays +1 or -1 uniformly at
    random, independently of the actions (as in bsuite's umbrella chain, which
    A.3 cites); otherwise earlier transitions pay 0.
  * Index observations (A.3.1-A.3.4): no state aliasing, so the index
    identifies the position t in {0, ..., L} (transitions taken so far),
    whether the agent chose correctly, k in {0, 1} (0 before the first
    action), and c: `index = 4 * t + 2 * k + c`. The terminal observation has
    t = L, so `num_states = 4 * (max_length + 1)`.
  * Distractor observations (A.3.5): float32 {0,1}^22, bit 0 = [c == 0]
    (whether a0 is the correct action), bit 1 = k, bits 2..21 i.i.d.
    Bernoulli(0.5) drawn afresh for every observation ("randomly sampled
    independently for all states").
"""

from typing import Any, Dict, NamedTuple, Tuple

import tensorflow as tf

from lpg_tf import rng as lpg_rng
from lpg_tf import types
from lpg_tf.envs import base

NUM_ACTIONS = 2  # Appendix A.3: a binary choice (a0, a1) at every step.
NUM_RELEVANT_BITS = 2  # Appendix A.3.5: "two relevant bits".
NUM_NOISE_BITS = 20  # Appendix A.3.5: noisy bits {0,1}^20.


class ChainSpec(NamedTuple):
  """One delayed chain variant of Appendix A.3.

  Attributes:
    min_length: shortest chain length, inclusive.
    max_length: longest chain length, inclusive.
    noisy: whether non-final transitions pay random +-1 rewards.
    distractor: whether observations are {0,1}^22 with 20 noise bits (A.3.5)
      instead of state indices.
  """
  min_length: int
  max_length: int
  noisy: bool
  distractor: bool


CHAINS: Dict[str, ChainSpec] = {
    "short": ChainSpec(5, 30, noisy=False, distractor=False),  # A.3.1
    "short_noisy": ChainSpec(5, 30, noisy=True, distractor=False),  # A.3.2
    "long": ChainSpec(5, 50, noisy=False, distractor=False),  # A.3.3
    "long_noisy": ChainSpec(5, 50, noisy=True, distractor=False),  # A.3.4
    "distractor": ChainSpec(5, 30, noisy=False, distractor=True),  # A.3.5
}


class ChainInstance(NamedTuple):
  """What stays fixed for a lifetime.

  Attributes:
    length: `[N]` int32, the chain length L: transitions per episode.
  """
  length: tf.Tensor


class ChainState(NamedTuple):
  """State of B delayed chains.

  Attributes:
    instance: ChainInstance with `[B]` fields.
    rng: `[2]` int32 stateless seed of the batch.
    correct_action: `[B]` int32, c: the first action that earns +1.
    chose_correct: `[B]` int32, k: 1 if the first action was c (0 before it).
    position: `[B]` int32, t: transitions taken in this episode.
  """
  instance: ChainInstance
  rng: tf.Tensor
  correct_action: tf.Tensor
  chose_correct: tf.Tensor
  position: tf.Tensor


class DelayedChain(base.Environment):
  """A batch of delayed chain MDPs (Appendix A.3); see the module docstring."""

  def __init__(self, name: str, chain: ChainSpec):
    """Builds the chain variant `chain`, registered as `name`."""
    self._chain = chain
    if chain.distractor:
      observation_shape = (NUM_RELEVANT_BITS + NUM_NOISE_BITS,)
      observation_dtype = tf.float32
      num_states = None
    else:
      observation_shape = ()
      observation_dtype = tf.int32
      num_states = 4 * (chain.max_length + 1)
    self._spec = base.EnvSpec(
        name=name,
        observation_shape=observation_shape,
        observation_dtype=observation_dtype,
        num_actions=NUM_ACTIONS,
        num_states=num_states,
        max_episode_steps=chain.max_length,
        action_space=None)

  @property
  def spec(self) -> base.EnvSpec:
    return self._spec

  @property
  def chain(self) -> ChainSpec:
    """The variant's ChainSpec."""
    return self._chain

  def sample_instances(self, seed: tf.Tensor, num: int) -> ChainInstance:
    """Draws `num` chain lengths uniformly from `[min_length, max_length]`."""
    length = tf.random.stateless_uniform(
        [num], seed, minval=self._chain.min_length,
        maxval=self._chain.max_length + 1, dtype=tf.int32, alg=lpg_rng.ALG)
    return ChainInstance(length=length)

  def reset(self, instance: Any,
            seed: tf.Tensor) -> Tuple[ChainState, types.TimeStep]:
    """Starts an episode in each chain, drawing its correct first action."""
    rng, action_seed, observation_seed = tf.unstack(
        lpg_rng.split(seed, 3))
    batch_size = tf.shape(instance.length)[0]
    correct_action = tf.random.stateless_uniform(
        [batch_size], action_seed, minval=0, maxval=NUM_ACTIONS,
        dtype=tf.int32, alg=lpg_rng.ALG)
    zeros = tf.zeros([batch_size], tf.int32)
    state = ChainState(
        instance=instance,
        rng=rng,
        correct_action=correct_action,
        chose_correct=zeros,
        position=zeros)
    timestep = types.TimeStep(
        observation=self._observation(state, observation_seed),
        reward=tf.zeros([batch_size], tf.float32),
        discount=tf.ones([batch_size], tf.float32),
        truncated=tf.zeros([batch_size], tf.bool))
    return state, timestep

  def transition(self, state: ChainState,
                 action: tf.Tensor) -> Tuple[ChainState, types.TimeStep]:
    """Moves one step along each chain; step L pays +-1 and terminates."""
    rng, reward_seed, observation_seed = tf.unstack(
        lpg_rng.split(state.rng, 3))
    is_first = tf.equal(state.position, 0)
    chose_correct = tf.where(
        is_first,
        tf.cast(tf.equal(action, state.correct_action), tf.int32),
        state.chose_correct)
    position = state.position + 1
    ended = position >= state.instance.length
    final_reward = tf.cast(2 * chose_correct - 1, tf.float32)
    if self._chain.noisy:
      coin = tf.random.stateless_uniform(
          tf.shape(position), reward_seed, minval=0, maxval=2, dtype=tf.int32,
          alg=lpg_rng.ALG)
      middle_reward = tf.cast(2 * coin - 1, tf.float32)
    else:
      middle_reward = tf.zeros_like(final_reward)
    next_state = state._replace(
        rng=rng, chose_correct=chose_correct, position=position)
    timestep = types.TimeStep(
        observation=self._observation(next_state, observation_seed),
        reward=tf.where(ended, final_reward, middle_reward),
        discount=tf.where(ended, 0.0, 1.0),
        truncated=tf.zeros_like(ended))
    return next_state, timestep

  def _observation(self, state: ChainState, seed: tf.Tensor) -> tf.Tensor:
    """`[B]` int32 state indices, or `[B, 22]` float32 distractor bits."""
    if not self._chain.distractor:
      return (4 * state.position + 2 * state.chose_correct
              + state.correct_action)
    relevant = tf.stack(
        [1 - state.correct_action, state.chose_correct], axis=-1)
    noise = tf.random.stateless_uniform(
        [tf.shape(relevant)[0], NUM_NOISE_BITS], seed, minval=0, maxval=2,
        dtype=tf.int32, alg=lpg_rng.ALG)
    return tf.cast(tf.concat([relevant, noise], axis=-1), tf.float32)
