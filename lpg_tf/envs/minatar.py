"""MinAtar games (Young & Tian, 2019) as a batched numpy environment.

  env = minatar.MinAtarVectorEnv("minatar/breakout", num_envs=64, seed=0)
  timestep = env.reset()                        # observation [B, 10, 10, 4]
  timestep, next_observation = env.step(action)  # action [B] ints
  minatar.random_policy_return("minatar/breakout", num_envs=8,
                               steps_per_env=5000, seed=0)

MinAtar is the 10 x 10 miniature of five Atari games, the fast meta-test of
learned-rule papers: `minatar/<game>` with <game> one of GAMES. The games are
the `minatar` package's own, stepped one after another in Python (they are
pure Python and numpy: one step of 128 Breakout games took about 1.5 ms here,
less than the agent's policy step for them; SpaceInvaders' game is about ten
times slower), with MinAtar's defaults:

  * sticky actions: with probability STICKY_ACTION_PROB a game repeats its
    previous action instead of the one given (`minatar.Environment`'s default);
  * difficulty ramping on (Asterix and Seaquest speed up over an episode;
    `minatar.Environment`'s default);
  * the game's minimal action set (`minimal_action_set()`, MinAtar's "v1" gym
    ids): 3 actions in Breakout and Freeway, 4 in SpaceInvaders, 5 in Asterix,
    6 in Seaquest. The agent has one policy logit per action that does
    something, as Table 4's Atari agent; the rest of the full set of 6 act
    like no-op in those games;
  * raw rewards (+1 per brick, alien, car crossing, ...; Seaquest's surfacing
    bonus is larger), not clipped (MinAtar's example agents do not clip
    either);
  * observations are the game's `[10, 10, C]` channels-last {0, 1} state
    (C = 4 Breakout and Asterix, 6 SpaceInvaders, 7 Freeway, 10 Seaquest),
    as float32 like the grid worlds'.

Episodes end when the game says so (Freeway after 2,500 steps); MinAtar itself
has no step limit, so a game that a good agent could play forever (Breakout
refills its bricks) is cut at MAX_EPISODE_STEPS, the limit the gymnasium
registrations of MinAtar games commonly use. As for every lpg_tf environment,
`discount` is 0 where an episode ended (cut or not) and `truncated` tells the
two apart.

The environment auto-resets like the in-graph ones (`types.TimeStep`): where a
step ended an episode, the returned observation is the next episode's first,
and `step`'s second result holds the true last observation
(`Trajectory.next_observation`).

Importing the `minatar` package costs about 2 s (it imports matplotlib's pyplot
and seaborn for its display code, which we never use), so it is imported when a
game is first built, not with this module: checking a name is free.
"""

import importlib
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from lpg_tf import errors
from lpg_tf import types
from lpg_tf.envs import base

PREFIX = "minatar/"
GAMES = ("asterix", "breakout", "freeway", "seaquest", "space_invaders")
NAMES = tuple(PREFIX + game for game in GAMES)
STICKY_ACTION_PROB = 0.1  # minatar.Environment's default.
DIFFICULTY_RAMPING = True  # minatar.Environment's default.
MAX_EPISODE_STEPS = 10_000  # Our cut; MinAtar has none (see above).


def game_name(name: str) -> str:
  """The MinAtar game of `minatar/<game>`, e.g. "breakout".

  Raises:
    ConfigError: for a name that is no MinAtar game; the message lists them.
  """
  game = name[len(PREFIX):] if name.startswith(PREFIX) else None
  if game not in GAMES:
    raise errors.ConfigError(
        f"Unknown MinAtar game {name!r}; valid: {', '.join(NAMES)}")
  return game


def game_seeds(seed: Union[int, Sequence[int]], num_envs: int) -> List[int]:
  """An independent integer seed per game, from `seed` (numpy's SeedSequence
  entropy: an int or a sequence of non-negative ints)."""
  states = np.random.SeedSequence(seed).spawn(num_envs)
  return [int(s.generate_state(1)[0]) for s in states]


class MinAtarVectorEnv(base.HostEnvironment):
  """B copies of one MinAtar game, auto-resetting; numpy in and out."""

  def __init__(self, name: str, num_envs: int, seed: Union[int, Sequence[int]],
               sticky_action_prob: float = STICKY_ACTION_PROB,
               difficulty_ramping: bool = DIFFICULTY_RAMPING,
               max_episode_steps: int = MAX_EPISODE_STEPS):
    """Builds and seeds `num_envs` games (their first episodes start at `reset`).

    Args:
      name: `minatar/<game>`, one of NAMES.
      num_envs: B.
      seed: an int or a sequence of ints (numpy's SeedSequence entropy); each
        game gets its own seed from it, for its episodes and sticky actions.
      sticky_action_prob: probability of repeating the previous action.
      difficulty_ramping: let Asterix and Seaquest speed up within an episode.
      max_episode_steps: episodes are cut after this many steps.

    Raises:
      ConfigError: for an unknown game.
    """
    game = game_name(name)
    if num_envs <= 0 or max_episode_steps <= 0:
      raise ValueError(f"num_envs and max_episode_steps must be positive, got "
                       f"{num_envs} and {max_episode_steps}")
    minatar = importlib.import_module("minatar")
    self._games = []
    for _ in range(num_envs):
      self._games.append(minatar.Environment(
          game, sticky_action_prob=sticky_action_prob,
          difficulty_ramping=difficulty_ramping))
    self.seed(game_seeds(seed, num_envs))
    self._action_set = tuple(self._games[0].minimal_action_set())
    self._spec = base.EnvSpec(
        name=name, observation_shape=tuple(self._games[0].state_shape()),
        observation_dtype=tf.float32, num_actions=len(self._action_set),
        num_states=None, max_episode_steps=max_episode_steps,
        action_space=None)
    self._max_episode_steps = max_episode_steps
    self._episode_steps = np.zeros([num_envs], np.int64)

  @property
  def spec(self) -> base.EnvSpec:
    return self._spec

  @property
  def num_envs(self) -> int:
    return len(self._games)

  @property
  def action_set(self) -> Tuple[int, ...]:
    """The package's action index of each of our actions (the minimal set)."""
    return self._action_set

  def seed(self, seeds: Sequence[int]) -> None:
    """Seeds every game afresh (its episodes and sticky actions), one int per
    game: new lifetimes in the same games (`reset` starts them).

    Raises:
      ValueError: not one seed per game.
    """
    if len(seeds) != self.num_envs:
      raise ValueError(f"Expected {self.num_envs} seeds, got {len(seeds)}")
    for game, game_seed in zip(self._games, seeds):
      game.seed(int(game_seed))
      # The sticky action carries over episodes (the package never clears
      # it): a reseeded game starts as a new one.
      game.last_action = 0

  def _observation(self) -> np.ndarray:
    observation = np.empty((self.num_envs,) + self._spec.observation_shape,
                           np.float32)
    for i, game in enumerate(self._games):
      observation[i] = game.state()
    return observation

  def reset(self) -> types.TimeStep:
    """Starts a new episode in every game; reward 0, discount 1."""
    for game in self._games:
      game.reset()
    self._episode_steps[:] = 0
    num_envs = self.num_envs
    return types.TimeStep(
        observation=self._observation(),
        reward=np.zeros([num_envs], np.float32),
        discount=np.ones([num_envs], np.float32),
        truncated=np.zeros([num_envs], bool))

  def step(self, action: Sequence[int]
          ) -> Tuple[types.TimeStep, np.ndarray]:
    """One step of every game; games whose episode ended start the next one.

    Args:
      action: `[B]` ints in [0, num_actions), indices into the minimal set.

    Returns:
      (timestep, next_observation): the timestep of `types.TimeStep`'s
      auto-reset convention (`[B, 10, 10, C]` observations, `[B]` reward,
      discount, truncated), and `[B, 10, 10, C]` the true next observation of
      each transition (the terminal one where the episode ended).
    """
    action = np.asarray(action)
    if action.shape != (self.num_envs,) or not (
        (action >= 0) & (action < len(self._action_set))).all():
      raise ValueError(f"Expected {self.num_envs} actions in "
                       f"[0, {len(self._action_set)}), got {action!r}")
    num_envs = self.num_envs
    reward = np.empty([num_envs], np.float32)
    terminal = np.empty([num_envs], bool)
    for i, (game, a) in enumerate(zip(self._games, action)):
      reward[i], terminal[i] = game.act(self._action_set[a])
    self._episode_steps += 1
    truncated = ~terminal & (self._episode_steps >= self._max_episode_steps)
    ended = terminal | truncated
    next_observation = self._observation()
    observation = next_observation
    if ended.any():
      observation = next_observation.copy()
      for i in np.flatnonzero(ended):
        self._games[i].reset()
        observation[i] = self._games[i].state()
      self._episode_steps[ended] = 0
    return types.TimeStep(observation=observation, reward=reward,
                          discount=(~ended).astype(np.float32),
                          truncated=truncated), next_observation


def random_policy_return(name: str, num_envs: int, steps_per_env: int,
                         seed: Union[int, Sequence[int]]) -> Optional[float]:
  """Mean return of the episodes the uniformly random policy ends.

  The reference line of MinAtar learning curves: actions drawn uniformly from
  the minimal set in `num_envs` games, for `steps_per_env` steps each. The
  games' seeds come from `[*seed, 1]`, so they differ from those of a training
  run's games seeded with `seed`. None if no episode ended.
  """
  env = MinAtarVectorEnv(name, num_envs, [*np.atleast_1d(seed).tolist(), 1])
  rng = np.random.default_rng(seed)
  env.reset()
  running = np.zeros([num_envs])
  total = count = 0.0
  for _ in range(steps_per_env):
    timestep, _ = env.step(rng.integers(env.spec.num_actions, size=num_envs))
    running += timestep.reward
    ended = timestep.discount == 0
    total += running[ended].sum()
    count += ended.sum()
    running[ended] = 0.0
  return float(total / count) if count else None
