"""Train agents from scratch on a named environment with a chosen update rule.

The library side of `launchers/train_agent.py`: validates every argument before any
work, builds L = `seeds` independent lifetimes (one per seed) of the Table 3 agent
for the environment, trains them together for `steps` environment steps each, and
writes learning curves (TensorBoard, curve.csv, curve.png with the uniformly random
policy's return as a reference line) to the work directory.

MinAtar games (`minatar/<game>`, the fast meta-test) run the same way, seeds
side by side, with MinAtar's agent (`agents.MINATAR`) acting in Python-stepped
games (`envs.minatar`, `host_rollout.HostRolloutSource`); their reference line
is the random policy in the same games.

Atari games (`atari/<Game>`, meta-testing of Section 4.5) take another road:
`atari_training.train_atari`, the Table 4 agent trained through the Reverb
actor/learner pipeline, one seed after another. Importing it here costs about
0.06 s (Reverb and ale-py) on top of TensorFlow's 3 s.
"""

import os
import time
from typing import Any, Callable, List, NamedTuple, Optional

from absl import logging
import numpy as np

from lpg_tf import agents
from lpg_tf import errors
from lpg_tf import envs
from lpg_tf import loggers
from lpg_tf import rules
from lpg_tf.analysis import curves
from lpg_tf.envs import atari
from lpg_tf.envs import minatar
from lpg_tf.experiments import agent_runs
from lpg_tf.experiments import atari_training
from lpg_tf.learning import evaluation
from lpg_tf.learning import host_rollout
from lpg_tf.learning import learner as learner_lib
from lpg_tf.learning import random_policy
from lpg_tf.meta import lifetime_settings

A2C_LEARNING_RATES = evaluation.A2C_LEARNING_RATES
DEFAULT_GAMMA = 0.99  # Table 2 samples gamma from {0.99, 0.995}.
DEFAULT_NUM_ENVS = 64  # B per lifetime in meta-training (Section 4.1).
ATARI_PREFIX = "atari/"
UNIFORM_POLICY_STEPS = 4000  # per environment, for the reference line.
# MinAtar's reference line: 8 games x 5,000 steps, two whole episodes of
# Freeway (2,500 steps each) and hundreds of the other games' per game.
MINATAR_UNIFORM_POLICY_ENVS = 8
MINATAR_UNIFORM_POLICY_STEPS = 5000


class TrainResult(NamedTuple):
  """Summary of a finished run.

  Attributes:
    final_returns: `[seeds]`, `curves.final_returns` of the logged returns.
    random_return: the uniformly random policy's average return (None if no
      episode ended while measuring it).
    env_steps: environment steps taken per seed.
    env_steps_per_s: training throughput, all seeds together.
  """
  final_returns: np.ndarray
  random_return: Optional[float]
  env_steps: int
  env_steps_per_s: float


def _positive(name: str, value: int) -> None:
  if value is None or value <= 0:
    raise errors.ConfigError(f"--{name} must be a positive integer, got {value!r}")


def check_hyperparameters(learning_rate: Optional[float],
                          kl_cost: Optional[float],
                          gamma: Optional[float]) -> None:
  """Range checks of the optional agent hyperparameters (None: the default)."""
  checks = (("learning_rate", learning_rate, lambda v: v > 0, "> 0"),
            ("kl_cost", kl_cost, lambda v: v >= 0, ">= 0"),
            ("gamma", gamma, lambda v: 0 < v <= 1, "in (0, 1]"))
  for name, value, is_valid, allowed in checks:
    if value is not None and not (np.isfinite(value) and is_valid(value)):
      raise errors.ConfigError(f"--{name} must be {allowed}, got {value!r}")


def train_agents(env_name: str, rule_name: str, workdir: str, steps: int,
                 seeds: int, num_envs: Optional[int] = None,
                 unroll_length: int = 20,
                 action_space: Optional[str] = None,
                 learning_rate: Optional[float] = None,
                 kl_cost: Optional[float] = None,
                 gamma: Optional[float] = None, seed: int = 0,
                 log_every: Optional[int] = None, overwrite: bool = False,
                 jit_compile: bool = True,
                 num_actors: Optional[int] = None) -> TrainResult:
  """Trains `seeds` agents for `steps` environment steps each; writes curves.

  Args:
    env_name: one of lpg_tf.envs.NAMES, a MinAtar game `minatar/<game>`
      (envs.minatar.NAMES), or an Atari game `atari/<Game>`.
    rule_name: one of lpg_tf.rules.NAMES, a rule shipped with the package
      (`pretrained` or `pretrained:NAME`, lpg_tf.rules.pretrained), or an
      exported rule's directory.
    workdir: where curves and summaries go; must be new or empty.
    steps: environment steps per seed (rounded up to whole updates of T x B).
    seeds: number of independent lifetimes, trained side by side (Atari: one
      after another).
    num_envs: B, parallel environments per seed; default DEFAULT_NUM_ENVS,
      agents.MINATAR's for MinAtar and 30 for Atari (Table 4).
    unroll_length: T, steps per update (20 in the paper).
    action_space: grid worlds only: envs.MOVE or envs.MOVE_AND_COLLECT.
    learning_rate: alpha_lr; default: a shipped rule's own for the
      environment (`pretrained.hyperparameters`), else A2C_LEARNING_RATES for
      the Table 3 optimiser, agents.MINATAR's for MinAtar, Table 4's for Atari.
    kl_cost: alpha_y (rules that train y); default: a shipped rule's own,
      else the middle of Table 3's grid, Table 4's for MinAtar and Atari.
    gamma: discount factor; default DEFAULT_GAMMA (agents.MINATAR's for
      MinAtar), Table 4's 0.995 for Atari.
    seed: seed of everything random; seed i of the run is lifetime i.
    log_every: updates between logging points; default
      `agent_runs.default_log_every`.
    overwrite: allow replacing a run already in `workdir`.
    jit_compile: compile the training step with XLA.
    num_actors: Atari only: actor processes (default 2).
  """
  check_hyperparameters(learning_rate, kl_cost, gamma)
  if env_name.startswith(ATARI_PREFIX):
    return _train_atari(env_name, rule_name, workdir, steps, seeds, num_envs,
                        unroll_length, action_space, learning_rate, kl_cost,
                        gamma, seed, log_every, overwrite, jit_compile,
                        num_actors)
  is_minatar = env_name.startswith(minatar.PREFIX)
  settings = (_minatar_settings if is_minatar else _toy_settings)(
      env_name, rule_name, steps, seeds, num_envs, unroll_length,
      action_space, learning_rate, kl_cost, gamma, log_every, num_actors)
  agent_runs.check_workdir(workdir, overwrite)
  os.makedirs(workdir, exist_ok=True)
  prediction_size = (settings.rule.prediction_size
                     or agent_runs.DEFAULT_PREDICTION_SIZE)
  run = (_minatar_run if is_minatar else _toy_run)(
      env_name, action_space, settings.num_envs, unroll_length, seeds, seed,
      prediction_size, jit_compile)
  learner = learner_lib.Learner(
      run.agent, settings.rule, settings.optimiser,
      learning_rate=np.full([seeds], settings.learning_rate, np.float32),
      kl_cost=np.full([seeds], settings.kl_cost, np.float32),
      gamma=np.full([seeds], settings.gamma, np.float32), source=run.source,
      jit_compile=jit_compile)
  steps_per_update = run.source.env_steps_per_update
  num_updates = -(-steps // steps_per_update)
  log_every = log_every or agent_runs.default_log_every(num_updates)
  logging.info("Training %d seeds on %s with %s: %d updates of %d steps each, "
               "logged every %d (alpha_lr=%g, alpha_y=%g, gamma=%g, "
               "optimiser=%s)", seeds, env_name, rule_name, num_updates,
               steps_per_update, log_every, settings.learning_rate,
               settings.kl_cost, settings.gamma, settings.optimiser)
  curve_log = agent_runs.CurveLogger(workdir, curves.CSV_FIELDS)
  logger = loggers.Dispatcher([
      loggers.TensorBoardLogger(os.path.join(workdir, curves.TB_DIR)),
      loggers.ConsoleLogger(
          f"{rule_name} {env_name} | env steps/seed",
          total=num_updates * steps_per_update, unit="env steps/seed",
          keys=["episode_return/seed_*", "policy_entropy", "env_steps_per_s"])])
  start = time.time()
  try:
    points = _train(learner, num_updates, log_every, steps_per_update,
                    curve_log, logger)
  finally:
    curve_log.close()
    logger.close()
  rate = num_updates * steps_per_update * seeds / max(time.time() - start, 1e-9)
  learner.sync_agent()
  return _summarise(env_name, rule_name, workdir, settings.num_envs,
                    unroll_length, curve_log, points, run.random_return(),
                    num_updates * steps_per_update, rate)


class _Settings(NamedTuple):
  """A run's checked settings, defaults filled in."""
  rule: Any
  optimiser: str
  num_envs: int
  learning_rate: float
  kl_cost: float
  gamma: float


def _check_counts(steps: int, seeds: int, num_envs: int, unroll_length: int,
                  log_every: Optional[int]) -> None:
  for name, value in (("steps", steps), ("seeds", seeds), ("num_envs", num_envs),
                      ("unroll_length", unroll_length)):
    _positive(name, value)
  if log_every is not None:
    _positive("log_every", log_every)


def _toy_settings(env_name: str, rule_name: str, steps: int, seeds: int,
                  num_envs: Optional[int], unroll_length: int,
                  action_space: Optional[str], learning_rate: Optional[float],
                  kl_cost: Optional[float], gamma: Optional[float],
                  log_every: Optional[int],
                  num_actors: Optional[int]) -> _Settings:
  """Checks a toy-environment run's arguments (ConfigError before any work)
  and fills in the defaults: a shipped rule's alpha (its hyperparameters.json),
  else A2C's rate for Table 3's optimiser and the middle of Table 3's alpha_y
  grid; DEFAULT_GAMMA and DEFAULT_NUM_ENVS."""
  if env_name not in envs.NAMES:
    raise errors.ConfigError(
        f"Unknown --env {env_name!r}; valid: {', '.join(envs.NAMES)}, "
        f"{minatar.PREFIX}<game> ({', '.join(minatar.GAMES)}), or "
        f"{ATARI_PREFIX}<Game> (e.g. {ATARI_PREFIX}Breakout)")
  if num_actors is not None:
    raise errors.ConfigError(
        f"--num_actors applies to Atari games only, not {env_name}")
  if action_space is not None and not envs.is_grid(env_name):
    raise errors.ConfigError(
        f"--action_space applies to grid worlds only, not {env_name}")
  num_envs = DEFAULT_NUM_ENVS if num_envs is None else num_envs
  rule = rules.make(rule_name)
  learning_rate, kl_cost = agent_runs.rule_hyperparameters(
      rule_name, env_name, learning_rate, kl_cost)
  _check_counts(steps, seeds, num_envs, unroll_length, log_every)
  optimiser = agents.preset_for(env_name).optimiser
  return _Settings(
      rule=rule, optimiser=optimiser, num_envs=num_envs,
      learning_rate=(A2C_LEARNING_RATES[optimiser] if learning_rate is None
                     else learning_rate),
      kl_cost=(lifetime_settings.for_env(env_name).default_kl_cost
               if kl_cost is None else kl_cost),
      gamma=DEFAULT_GAMMA if gamma is None else gamma)


def _minatar_settings(env_name: str, rule_name: str, steps: int, seeds: int,
                      num_envs: Optional[int], unroll_length: int,
                      action_space: Optional[str],
                      learning_rate: Optional[float], kl_cost: Optional[float],
                      gamma: Optional[float], log_every: Optional[int],
                      num_actors: Optional[int]) -> _Settings:
  """`_toy_settings` for `minatar/<game>`: defaults from a shipped rule's
  hyperparameters.json (alpha) and agents.MINATAR."""
  minatar.game_name(env_name)
  for flag, value in (("num_actors", num_actors),
                      ("action_space", action_space)):
    if value is not None:
      raise errors.ConfigError(
          f"--{flag} does not apply to MinAtar games ({env_name})")
  preset = agents.MINATAR
  num_envs = preset.num_envs if num_envs is None else num_envs
  rule = rules.make(rule_name)
  learning_rate, kl_cost = agent_runs.rule_hyperparameters(
      rule_name, env_name, learning_rate, kl_cost)
  _check_counts(steps, seeds, num_envs, unroll_length, log_every)
  return _Settings(
      rule=rule, optimiser=preset.optimiser, num_envs=num_envs,
      learning_rate=(preset.learning_rate if learning_rate is None
                     else learning_rate),
      kl_cost=preset.kl_cost if kl_cost is None else kl_cost,
      gamma=preset.discount if gamma is None else gamma)


class _Run(NamedTuple):
  """What a run trains and against what it is measured.

  Attributes:
    agent: the agent network of all seeds (L = seeds).
    source: the learner's trajectory source.
    random_return: measures the uniformly random policy's average return in
      the same environment (None if no episode ended).
  """
  agent: Any
  source: Any
  random_return: Callable[[], Optional[float]]


def _toy_run(env_name: str, action_space: Optional[str], num_envs: int,
             unroll_length: int, seeds: int, seed: int, prediction_size: int,
             jit_compile: bool) -> _Run:
  """Table 3's agent acting in the in-graph environment."""
  del jit_compile  # The rollout is compiled with the update.
  env = envs.make(env_name, action_space)
  return _Run(
      agent=agents.build_agent(env.spec, num_lifetimes=seeds, seed=seed,
                               prediction_size=prediction_size),
      source=learner_lib.RolloutSource(env, seeds, num_envs, unroll_length,
                                       seed),
      random_return=lambda: random_policy.random_policy_return(
          env, num_envs,
          max(UNIFORM_POLICY_STEPS, 2 * env.spec.max_episode_steps), seed))


def _minatar_run(env_name: str, action_space: Optional[str], num_envs: int,
                 unroll_length: int, seeds: int, seed: int,
                 prediction_size: int, jit_compile: bool) -> _Run:
  """MinAtar's agent acting in `seeds` x `num_envs` Python-stepped games."""
  del action_space  # Checked to be None.
  env = minatar.MinAtarVectorEnv(env_name, seeds * num_envs, seed)
  agent = agents.build_agent(env.spec, num_lifetimes=seeds, seed=seed,
                             prediction_size=prediction_size,
                             torso=agents.MINATAR.torso)
  return _Run(
      agent=agent,
      source=host_rollout.HostRolloutSource(env, agent.apply, seeds,
                                            unroll_length, seed, jit_compile),
      random_return=lambda: minatar.random_policy_return(
          env_name, MINATAR_UNIFORM_POLICY_ENVS, MINATAR_UNIFORM_POLICY_STEPS,
          seed))


def _summarise(env_name: str, rule_name: str, workdir: str, num_envs: int,
               unroll_length: int, curve_log: agent_runs.CurveLogger,
               points: List[np.ndarray], random_return: Optional[float],
               env_steps: int, rate: float) -> TrainResult:
  """Draws curve.png with the random policy's reference, logs the end."""
  seeds = len(points[0]) if points else 0
  png = curves.plot_curves(
      curve_log.rows, os.path.join(workdir, curves.PNG_NAME),
      f"{rule_name} on {env_name} ({seeds} seeds, B={num_envs}, "
      f"T={unroll_length})", random_return)
  final = curves.final_returns(np.array(points))
  logging.info("Done: final return per seed %s (random policy %s); curves in %s",
               np.array2string(final, precision=3), random_return, png)
  return TrainResult(final, random_return, env_steps, rate)


def _train(learner: learner_lib.Learner, num_updates: int, log_every: int,
           steps_per_update: int, curve_log: loggers.Logger,
           logger: loggers.Logger) -> List[np.ndarray]:
  """The update loop; returns the logged `[seeds]` returns, one per point.

  A point's return is the mean over the episodes that ended since the previous
  point (NaN for a seed where none ended): every update's episodes count, not
  only the logged update's. `curve_log` gets one row per seed and point,
  `logger` the point's scalars against env steps per seed.
  """
  return_sum = episodes = 0.0
  points = []
  first_step_done = None
  for update in range(1, num_updates + 1):
    metrics = learner.step()
    if first_step_done is None:
      first_step_done = time.time()
    return_sum = return_sum + metrics["episode_return_sum"]
    episodes = episodes + metrics["episode_count"]
    if update % log_every and update != num_updates:
      continue
    env_steps = update * steps_per_update
    with np.errstate(invalid="ignore", divide="ignore"):
      returns = np.where(episodes > 0, return_sum / np.maximum(episodes, 1), np.nan)
    for seed, (value, count) in enumerate(zip(returns, episodes)):
      curve_log.write(env_steps, {"seed": seed, "env_steps": env_steps,
                                  "episode_return": float(value),
                                  "episodes": int(count)})
    scalars = {f"episode_return/seed_{seed}": float(value)
               for seed, value in enumerate(returns)}
    if np.isfinite(returns).any():
      scalars["episode_return/mean"] = float(np.nanmean(returns))
    scalars["loss"] = float(np.mean(metrics["loss"]))
    scalars["policy_entropy"] = float(np.mean(metrics["policy_entropy"]))
    if update > 1:
      elapsed = time.time() - first_step_done
      scalars["env_steps_per_s"] = ((update - 1) * steps_per_update
                                    * len(returns) / elapsed)
    logger.write(env_steps, scalars)
    points.append(returns)
    return_sum = episodes = 0.0
  return points


def _train_atari(env_name: str, rule_name: str, workdir: str, steps: int,
                 seeds: int, num_envs: Optional[int], unroll_length: int,
                 action_space: Optional[str], learning_rate: Optional[float],
                 kl_cost: Optional[float], gamma: Optional[float], seed: int,
                 log_every: Optional[int], overwrite: bool,
                 jit_compile: bool, num_actors: Optional[int]) -> TrainResult:
  """`train_agents` for `atari/<Game>`: `atari_training.train_atari`."""
  if action_space is not None:
    raise errors.ConfigError(
        f"--action_space applies to grid worlds only, not {env_name}")
  result = atari_training.train_atari(
      env_name, rule_name, workdir, steps, seeds,
      num_actors=(atari_training.DEFAULT_NUM_ACTORS if num_actors is None
                  else num_actors),
      num_envs=agents.ATARI.num_envs if num_envs is None else num_envs,
      unroll_length=unroll_length, learning_rate=learning_rate,
      kl_cost=kl_cost, gamma=gamma, seed=seed, log_every=log_every,
      overwrite=overwrite, jit_compile=jit_compile)
  return TrainResult(
      final_returns=result.final_returns,
      random_return=atari.random_score(env_name),
      env_steps=result.env_steps,
      env_steps_per_s=result.frames_per_s / atari.FRAME_SKIP)
