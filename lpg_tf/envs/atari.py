"""Atari 2600 games through the ALE's C++ vector environment, for meta-testing.

  env = atari.AtariEnv("atari/Breakout", num_envs=30, seed=0)
  observation = env.reset()                    # [E, 84, 84, 4] uint8
  step = env.step(action)                      # action [E] int32
  atari.human_normalised("atari/Breakout", 30.5)   # 1.0

Games are named `atari/<Game>` with the game in CamelCase (`atari/MsPacman`) or
as the ALE's ROM id (`atari/ms_pacman`); every ROM ale-py ships is available.

The environment is `ale_py.vector_env.AtariVectorEnv` (C++ threads, the
preprocessing built in; DESIGN.md idiom 9) set up with the usual protocol:

  * frame skip 4, the last two frames max-pooled, 84 x 84 greyscale, the last 4
    frames stacked; observations are channels-last `[E, 84, 84, 4]` uint8
    (the vector env stacks channels first; we transpose);
  * up to 30 no-op actions at the start of every episode;
  * sticky actions with repeat_action_probability 0.25, as the ALE v5 versions
    (Machado et al. 2018);
  * the minimal action set of each game (Table 4's agent has one policy logit per
    legal action);
  * full episodes: losing a life does not end an episode (no `episodic_life`),
    so the returns we log are whole-game scores; an episode is cut at 108,000
    frames (30 minutes of play, the DQN protocol); no FIRE press at reset (the
    agent must learn it, as in ALE v5);
  * raw rewards: the environment does not clip them, so episode returns are game
    scores; clipping for learning is the agent's business (see
    `lpg_tf.distributed.actors`).

Auto-reset (gymnasium 1.x "next step" mode): after a step that ends an episode
(terminated or truncated), the *next* call to `step` resets that environment; the
action given for it there is ignored, its reward is 0 and its observation is the
first of the new episode. `step` flags such rows with `reset_step`: they are not
transitions, and `lpg_tf.distributed.trajectory_buffer` removes them, using their
observation as the start of the next episode, so that they never enter a
trajectory.

Human-normalised scores (`human_normalised`) use the random-agent and human
scores of `HUMAN_AND_RANDOM_SCORES`.
"""

import re
import time
from typing import Dict, NamedTuple, Optional, Tuple

import ale_py
from ale_py import roms
from ale_py import vector_env
import numpy as np
import tensorflow as tf

from lpg_tf import errors
from lpg_tf.envs import base

PREFIX = "atari/"
FRAME_SKIP = 4
SCREEN_SIZE = 84
STACK = 4
OBSERVATION_SHAPE = (SCREEN_SIZE, SCREEN_SIZE, STACK)
NOOP_MAX = 30
STICKY_ACTION_PROBABILITY = 0.25  # ALE v5 (Machado et al. 2018).
MAX_EPISODE_FRAMES = 108_000  # 30 minutes at 60 frames/s (Mnih et al. 2015).

# Average undiscounted episode returns of a uniformly random agent and of a
# professional human games tester, (random, human), each episode starting after
# up to 30 no-ops and capped at 108,000 frames: Mnih et al. 2015 (Nature, Extended
# Data Table 2) for 49 games, completed to Atari-57 by Wang et al. 2016 (dueling
# networks) and Badia et al. 2020 (Agent57, Appendix H). The values are the ones
# DeepMind's DQN Zoo uses (dqn_zoo/atari_data.py). Video Pinball is left out:
# its random score differs between sources (0 or 16256.9), so it has no
# normalised score here.
HUMAN_AND_RANDOM_SCORES: Dict[str, Tuple[float, float]] = {
    "alien": (227.8, 7127.7),
    "amidar": (5.8, 1719.5),
    "assault": (222.4, 742.0),
    "asterix": (210.0, 8503.3),
    "asteroids": (719.1, 47388.7),
    "atlantis": (12850.0, 29028.1),
    "bank_heist": (14.2, 753.1),
    "battle_zone": (2360.0, 37187.5),
    "beam_rider": (363.9, 16926.5),
    "berzerk": (123.7, 2630.4),
    "bowling": (23.1, 160.7),
    "boxing": (0.1, 12.1),
    "breakout": (1.7, 30.5),
    "centipede": (2090.9, 12017.0),
    "chopper_command": (811.0, 7387.8),
    "crazy_climber": (10780.5, 35829.4),
    "defender": (2874.5, 18688.9),
    "demon_attack": (152.1, 1971.0),
    "double_dunk": (-18.6, -16.4),
    "enduro": (0.0, 860.5),
    "fishing_derby": (-91.7, -38.7),
    "freeway": (0.0, 29.6),
    "frostbite": (65.2, 4334.7),
    "gopher": (257.6, 2412.5),
    "gravitar": (173.0, 3351.4),
    "hero": (1027.0, 30826.4),
    "ice_hockey": (-11.2, 0.9),
    "jamesbond": (29.0, 302.8),
    "kangaroo": (52.0, 3035.0),
    "krull": (1598.0, 2665.5),
    "kung_fu_master": (258.5, 22736.3),
    "montezuma_revenge": (0.0, 4753.3),
    "ms_pacman": (307.3, 6951.6),
    "name_this_game": (2292.3, 8049.0),
    "phoenix": (761.4, 7242.6),
    "pitfall": (-229.4, 6463.7),
    "pong": (-20.7, 14.6),
    "private_eye": (24.9, 69571.3),
    "qbert": (163.9, 13455.0),
    "riverraid": (1338.5, 17118.0),
    "road_runner": (11.5, 7845.0),
    "robotank": (2.2, 11.9),
    "seaquest": (68.4, 42054.7),
    "skiing": (-17098.1, -4336.9),
    "solaris": (1236.3, 12326.7),
    "space_invaders": (148.0, 1668.7),
    "star_gunner": (664.0, 10250.0),
    "surround": (-10.0, 6.5),
    "tennis": (-23.8, -8.3),
    "time_pilot": (3568.0, 5229.2),
    "tutankham": (11.4, 167.6),
    "up_n_down": (533.4, 11693.2),
    "venture": (0.0, 1187.5),
    "wizard_of_wor": (563.5, 4756.5),
    "yars_revenge": (3092.9, 54576.9),
    "zaxxon": (32.5, 9173.3),
}


def _camel_case(rom_id: str) -> str:
  return "".join(part.capitalize() for part in rom_id.split("_"))


def rom_ids() -> Tuple[str, ...]:
  """The ROM ids ale-py ships, e.g. ("adventure", "air_raid", ...)."""
  return tuple(sorted(roms.get_all_rom_ids()))


def game_names() -> Tuple[str, ...]:
  """Every valid name in CamelCase form: ("atari/Adventure", ...)."""
  return tuple(PREFIX + _camel_case(rom) for rom in rom_ids())


def is_atari(name: str) -> bool:
  """Whether `name` asks for an Atari game (the `atari/` prefix)."""
  return name.startswith(PREFIX)


def rom_id(name: str) -> str:
  """The ALE ROM id of `atari/Breakout`, `atari/MsPacman` or `atari/ms_pacman`.

  Raises:
    ConfigError: without the `atari/` prefix, or for a game ale-py lacks; the
      message lists valid names.
  """
  game = name[len(PREFIX):] if is_atari(name) else None
  if game:
    by_name = {_camel_case(rom).lower(): rom for rom in rom_ids()}
    key = re.sub(r"[_\-\s]", "", game).lower()
    if key in by_name:
      return by_name[key]
  raise errors.ConfigError(
      f"Unknown Atari game {name!r}: expected atari/<Game>, e.g. "
      "atari/Breakout, atari/Pong, atari/Boxing, atari/MsPacman; the "
      f"{len(rom_ids())} games ale-py ships are {', '.join(game_names())}")


def canonical_name(name: str) -> str:
  """`atari/ms_pacman` -> `atari/MsPacman`; ConfigError for an unknown game."""
  return PREFIX + _camel_case(rom_id(name))


def num_actions(name: str) -> int:
  """The size of the game's minimal action set."""
  ale = ale_py.ALEInterface()
  ale.setLoggerMode(ale_py.LoggerMode.Error)
  ale.loadROM(roms.get_rom_path(rom_id(name)))
  return len(ale.getMinimalActionSet())


def spec(name: str, max_episode_frames: int = MAX_EPISODE_FRAMES) -> base.EnvSpec:
  """The EnvSpec an agent for the game is built from (Table 4's agent)."""
  return base.EnvSpec(
      name=canonical_name(name),
      observation_shape=OBSERVATION_SHAPE,
      observation_dtype=tf.uint8,
      num_actions=num_actions(name),
      num_states=None,
      max_episode_steps=max_episode_frames // FRAME_SKIP,
      action_space=None)


def human_normalised(name: str, score: float) -> Optional[float]:
  """(score - random) / (human - random), or None for a game without references.

  Args:
    name: `atari/<Game>` (any form `rom_id` accepts) or a bare ROM id.
    score: an undiscounted episode return.
  """
  key = name if name in HUMAN_AND_RANDOM_SCORES else None
  if key is None:
    try:
      key = rom_id(name if is_atari(name) else PREFIX + name)
    except errors.ConfigError:
      return None
  if key not in HUMAN_AND_RANDOM_SCORES:
    return None
  random_score, human_score = HUMAN_AND_RANDOM_SCORES[key]
  return (score - random_score) / (human_score - random_score)


def random_score(name: str) -> Optional[float]:
  """The random agent's reference score, or None when the table lacks the game."""
  scores = HUMAN_AND_RANDOM_SCORES.get(rom_id(name))
  return None if scores is None else scores[0]


class AtariStep(NamedTuple):
  """What `AtariEnv.step` returns for E environments.

  Attributes:
    observation: `[E, 84, 84, 4]` uint8, the next observation (the terminal one
      where `done`; the first of a new episode where `reset_step`).
    reward: `[E]` float32 raw game reward (0 on reset steps).
    done: `[E]` bool, the transition ended the episode (terminated or cut at the
      frame limit).
    truncated: `[E]` bool, ended by the frame limit rather than the game.
    episode_return: `[E]` float32, the episode's undiscounted raw return where
      `done`, else 0.
    reset_step: `[E]` bool, this row was the auto-reset of an environment whose
      previous step was `done`: its action was ignored and it is no transition.
  """
  observation: np.ndarray
  reward: np.ndarray
  done: np.ndarray
  truncated: np.ndarray
  episode_return: np.ndarray
  reset_step: np.ndarray


class AtariEnv:
  """E copies of one game, stepped together by the ALE's C++ threads.

  Not an in-graph `envs.base.Environment`: the emulator is C++ with numpy in and
  out, driven by an actor process (lpg_tf.distributed.actors).
  """

  def __init__(self, name: str, num_envs: int, seed: int = 0,
               num_threads: int = 0,
               max_episode_frames: int = MAX_EPISODE_FRAMES,
               repeat_action_probability: float = STICKY_ACTION_PROBABILITY,
               noop_max: int = NOOP_MAX):
    """Starts the emulators (call `reset` before `step`).

    Args:
      name: `atari/<Game>`.
      num_envs: E.
      seed: environment i is seeded with seed + i (sticky actions, no-ops).
      num_threads: emulator threads; 0 lets ale-py choose (one per core).
      max_episode_frames: frames after which an episode is cut (truncated).
      repeat_action_probability: sticky-action probability.
      noop_max: at most this many no-ops start an episode.

    Raises:
      ConfigError: for an unknown game or a non-positive count.
    """
    if num_envs <= 0:
      raise errors.ConfigError(f"num_envs must be positive, got {num_envs}")
    if max_episode_frames < FRAME_SKIP:
      raise errors.ConfigError(
          f"max_episode_frames must be at least {FRAME_SKIP}, got "
          f"{max_episode_frames}")
    self._spec = spec(name, max_episode_frames)
    self._num_envs = num_envs
    self._seed = seed
    self._env = vector_env.AtariVectorEnv(
        rom_id(name), num_envs,
        num_threads=num_threads,
        max_num_frames_per_episode=max_episode_frames,
        repeat_action_probability=repeat_action_probability,
        full_action_space=False,
        img_height=SCREEN_SIZE, img_width=SCREEN_SIZE, grayscale=True,
        stack_num=STACK, frameskip=FRAME_SKIP, maxpool=True,
        noop_max=noop_max, episodic_life=False, reward_clipping=False,
        use_fire_reset=False)
    self._returns = np.zeros(num_envs, np.float32)
    self._previous_done = np.zeros(num_envs, bool)

  @property
  def spec(self) -> base.EnvSpec:
    return self._spec

  @property
  def num_envs(self) -> int:
    return self._num_envs

  def reset(self) -> np.ndarray:
    """Starts every environment afresh; returns `[E, 84, 84, 4]` uint8."""
    observation, _ = self._env.reset(seed=self._seed)
    self._returns[:] = 0.0
    self._previous_done[:] = False
    return _channels_last(observation)

  def step(self, action: np.ndarray) -> AtariStep:
    """Steps all E environments with `action` `[E]` int (minimal action set)."""
    observation, reward, terminated, truncated, _ = self._env.step(
        np.asarray(action, np.int32))
    reset_step = self._previous_done
    done = np.logical_or(terminated, truncated) & ~reset_step
    reward = np.where(reset_step, 0.0, reward).astype(np.float32)
    self._returns = np.where(reset_step, 0.0, self._returns + reward)
    episode_return = np.where(done, self._returns, 0.0).astype(np.float32)
    self._previous_done = done
    return AtariStep(
        observation=_channels_last(observation), reward=reward, done=done,
        truncated=np.asarray(truncated) & done, episode_return=episode_return,
        reset_step=reset_step.copy())

  def close(self) -> None:
    self._env.close()

  def __enter__(self) -> "AtariEnv":
    return self

  def __exit__(self, *unused_exc) -> None:
    self.close()


def _channels_last(observation: np.ndarray) -> np.ndarray:
  """`[E, 4, 84, 84]` (the vector env's stack) -> `[E, 84, 84, 4]`, contiguous."""
  return np.ascontiguousarray(np.transpose(observation, (0, 2, 3, 1)))


def raw_throughput(name: str, num_envs: int, steps: int, seed: int = 0,
                   num_threads: int = 0) -> float:
  """Frames per second of the vector env alone, with uniformly random actions.

  Frames are agent steps x FRAME_SKIP, summed over the E environments; reset
  steps count as steps (the emulator works on them too). Creation and the first
  reset are not timed.

  Args:
    name: `atari/<Game>`.
    num_envs: E.
    steps: vector steps to time (each steps all E environments).
    seed: seeds the environments and the actions.
    num_threads: emulator threads (0: ale-py's choice).
  """
  if steps <= 0:
    raise errors.ConfigError(f"steps must be positive, got {steps}")
  rng = np.random.default_rng(seed)
  with AtariEnv(name, num_envs, seed=seed, num_threads=num_threads) as env:
    env.reset()
    actions = rng.integers(0, env.spec.num_actions, size=(steps, num_envs),
                           dtype=np.int32)
    start = time.perf_counter()
    for action in actions:
      env.step(action)
    elapsed = time.perf_counter() - start
  return steps * num_envs * FRAME_SKIP / elapsed
