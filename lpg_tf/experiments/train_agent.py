"""Train agents from scratch on a named environment with a chosen update rule.

The library side of `launchers/train_agent.py`: validates every argument before any
work, builds L = `seeds` independent lifetimes (one per seed) of the Table 3 agent
for the environment, trains them together for `steps` environment steps each, and
writes learning curves (TensorBoard, curve.csv, curve.png with the uniformly random
policy's return as a reference line) to the work directory.

Atari games (`atari/<Game>`, meta-testing of Section 4.5) take another road:
`atari_training.train_atari`, the Table 4 agent trained through the Reverb
actor/learner pipeline, one seed after another.
"""

import os
import shutil
import time
from typing import Dict, NamedTuple, Optional

from absl import logging
import numpy as np

from lpg_tf import agents
from lpg_tf import errors
from lpg_tf import envs
from lpg_tf import rules
from lpg_tf.analysis import curves
from lpg_tf.learning import agent_trainer
from lpg_tf.learning import optimizers

# A2C's agent learning rates, by the Table 3 optimiser of the environment; chosen
# by a sweep over {10, 20, 40, 80} (SGD, tabular) and {3e-4, 1e-3, 3e-3} (Adam) on
# the 15 training environments (issue 3 note).
A2C_LEARNING_RATES = {optimizers.SGD: 40.0, optimizers.ADAM: 0.002}
DEFAULT_GAMMA = 0.99  # Table 2 samples gamma from {0.99, 0.995}.
DEFAULT_NUM_ENVS = 64  # B per lifetime in meta-training (Section 4.1).
ATARI_PREFIX = "atari/"
UNIFORM_POLICY_STEPS = 4000  # per environment, for the reference line.
DEFAULT_PREDICTION_SIZE = 30  # m (Section 4.1), for rules that read no y.


class TrainResult(NamedTuple):
  """Summary of a finished run.

  Attributes:
    final_returns: `[seeds]` mean return over the last 10% of logging points.
    random_return: the uniformly random policy's average return (None if no
      episode ended while measuring it).
    env_steps: environment steps taken per seed.
    env_steps_per_s: training throughput, all seeds together.
  """
  final_returns: np.ndarray
  random_return: Optional[float]
  env_steps: int
  env_steps_per_s: float


def final_returns(points: np.ndarray) -> np.ndarray:
  """Per seed, the mean of the last 10% of logging points where episodes ended.

  Args:
    points: `[logging points, seeds]` mean returns, NaN where a seed ended no
      episode (long episodes end only every few points).
  """
  finals = []
  for column in points.T:
    finite = column[np.isfinite(column)]
    finals.append(finite[-max(1, len(finite) // 10):].mean() if finite.size
                  else np.nan)
  return np.array(finals)


def _positive(name: str, value: int) -> None:
  if value is None or value <= 0:
    raise errors.ConfigError(f"--{name} must be a positive integer, got {value!r}")


# Everything train_agent writes into its work directory; --overwrite removes
# these and nothing else.
OWN_OUTPUTS = (curves.CSV_NAME, curves.PNG_NAME, curves.TB_DIR)


def check_workdir(workdir: str, overwrite: bool) -> None:
  """Refuses a work directory that already holds something, unless `overwrite`.

  With `overwrite`, the previous run's curves and summaries are removed so the new
  run's TensorBoard events do not mix with the old ones. A directory holding
  anything train_agent does not write (a meta-training run, say) is refused
  even then: --overwrite never deletes another kind of run.
  """
  if not workdir:
    raise errors.ConfigError("--workdir is required")
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise errors.ConfigError(f"--workdir {workdir!r} exists and is not a directory")
  if not os.path.isdir(workdir) or not os.listdir(workdir):
    return
  if not overwrite:
    raise errors.ConfigError(
        f"--workdir {workdir!r} already holds {sorted(os.listdir(workdir))}; "
        "choose a new directory, or pass --overwrite to replace that run")
  foreign = sorted(set(os.listdir(workdir)) - set(OWN_OUTPUTS))
  if foreign:
    raise errors.ConfigError(
        f"--workdir {workdir!r} holds {foreign}, which train_agent does not "
        f"write (another kind of run); --overwrite replaces only "
        f"{', '.join(OWN_OUTPUTS)}: choose another directory")
  for name in (curves.CSV_NAME, curves.PNG_NAME):
    if os.path.exists(os.path.join(workdir, name)):
      os.remove(os.path.join(workdir, name))
  shutil.rmtree(os.path.join(workdir, curves.TB_DIR), ignore_errors=True)


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
                 log_every: int = 50, overwrite: bool = False,
                 jit_compile: bool = True,
                 num_actors: Optional[int] = None) -> TrainResult:
  """Trains `seeds` agents for `steps` environment steps each; writes curves.

  Args:
    env_name: one of lpg_tf.envs.NAMES, or an Atari game `atari/<Game>`.
    rule_name: one of lpg_tf.rules.NAMES, or an exported rule's directory.
    workdir: where curves and summaries go; must be new or empty.
    steps: environment steps per seed (rounded up to whole updates of T x B).
    seeds: number of independent lifetimes, trained side by side (Atari: one
      after another).
    num_envs: B, parallel environments per seed; default DEFAULT_NUM_ENVS, and
      30 for Atari (Table 4).
    unroll_length: T, steps per update (20 in the paper).
    action_space: grid worlds only: envs.MOVE or envs.MOVE_AND_COLLECT.
    learning_rate: alpha_lr; default: A2C_LEARNING_RATES for the Table 3
      optimiser, Table 4's for Atari.
    kl_cost: alpha_y (rules that train y); default: the middle of Table 3's
      grid, Table 4's for Atari.
    gamma: discount factor; default DEFAULT_GAMMA, Table 4's 0.995 for Atari.
    seed: seed of everything random; seed i of the run is lifetime i.
    log_every: updates between logging points.
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
  if env_name not in envs.NAMES:
    raise errors.ConfigError(
        f"Unknown --env {env_name!r}; valid: {', '.join(envs.NAMES)}, or "
        f"{ATARI_PREFIX}<Game> (e.g. {ATARI_PREFIX}Breakout)")
  if num_actors is not None:
    raise errors.ConfigError(
        f"--num_actors applies to Atari games only, not {env_name}")
  num_envs = DEFAULT_NUM_ENVS if num_envs is None else num_envs
  gamma = DEFAULT_GAMMA if gamma is None else gamma
  if action_space is not None and not envs.is_grid(env_name):
    raise errors.ConfigError(
        f"--action_space applies to grid worlds only, not {env_name}")
  rule = rules.make(rule_name)
  for name, value in (("steps", steps), ("seeds", seeds), ("num_envs", num_envs),
                      ("unroll_length", unroll_length), ("log_every", log_every)):
    _positive(name, value)
  check_workdir(workdir, overwrite)
  env = envs.make(env_name, action_space)
  preset = agents.preset_for(env_name)
  lr = A2C_LEARNING_RATES[preset.optimiser] if learning_rate is None else learning_rate
  alpha_y = preset.kl_costs[len(preset.kl_costs) // 2] if kl_cost is None else kl_cost
  os.makedirs(workdir, exist_ok=True)

  agent = agents.build_agent(
      env.spec, num_lifetimes=seeds, seed=seed,
      prediction_size=rule.prediction_size or DEFAULT_PREDICTION_SIZE)
  trainer = agent_trainer.AgentTrainer(
      env, agent, rule, preset.optimiser,
      learning_rate=np.full([seeds], lr, np.float32),
      kl_cost=np.full([seeds], alpha_y, np.float32),
      gamma=np.full([seeds], gamma, np.float32), num_envs=num_envs,
      unroll_length=unroll_length, seed=seed, jit_compile=jit_compile)
  num_updates = -(-steps // trainer.env_steps_per_update)
  writer = curves.CurveWriter(
      workdir, f"{rule_name} on {env_name} ({seeds} seeds, B={num_envs}, T={unroll_length})")
  logging.info("Training %d seeds on %s with %s: %d updates of %d steps each "
               "(alpha_lr=%g, alpha_y=%g, gamma=%g, optimiser=%s)", seeds,
               env_name, rule_name, num_updates, trainer.env_steps_per_update,
               lr, alpha_y, gamma, preset.optimiser)

  return_sum = np.zeros(seeds)
  episodes = np.zeros(seeds)
  points = []
  start = time.time()
  first_step_done = None
  for update in range(1, num_updates + 1):
    metrics = trainer.step()
    if first_step_done is None:
      first_step_done = time.time()
    return_sum += metrics.episode_return_sum
    episodes += metrics.episode_count
    if update % log_every == 0 or update == num_updates:
      env_steps = update * trainer.env_steps_per_update
      with np.errstate(invalid="ignore", divide="ignore"):
        returns = np.where(episodes > 0, return_sum / np.maximum(episodes, 1), np.nan)
      writer.write(env_steps, returns, episodes)
      elapsed = time.time() - first_step_done
      rate = (update - 1) * trainer.env_steps_per_update * seeds / max(elapsed, 1e-9)
      writer.scalars(env_steps, {"loss": float(np.mean(metrics.loss)),
                                 "policy_entropy": float(np.mean(metrics.policy_entropy)),
                                 "env_steps_per_s": rate})
      remaining = (num_updates - update) * trainer.env_steps_per_update * seeds
      logging.info("%s %s | steps/seed %d/%d | return %s | entropy %.3f | "
                   "%.0f env steps/s | ~%.0fs left", rule_name, env_name,
                   env_steps, num_updates * trainer.env_steps_per_update,
                   np.array2string(returns, precision=2), np.mean(metrics.policy_entropy),
                   rate, remaining / max(rate, 1e-9))
      points.append(returns)
      return_sum[:] = 0
      episodes[:] = 0
  total_time = time.time() - start
  trainer.sync_agent()
  random_return = agent_trainer.random_policy_return(
      env, num_envs, max(UNIFORM_POLICY_STEPS, 2 * env.spec.max_episode_steps), seed)
  png = writer.close(random_return)
  final = final_returns(np.array(points))
  rate = num_updates * trainer.env_steps_per_update * seeds / max(total_time, 1e-9)
  logging.info("Done: final return per seed %s (random policy %s); curves in %s",
               np.array2string(final, precision=3), random_return, png)
  return TrainResult(final, random_return,
                     num_updates * trainer.env_steps_per_update, rate)


def _train_atari(env_name: str, rule_name: str, workdir: str, steps: int,
                 seeds: int, num_envs: Optional[int], unroll_length: int,
                 action_space: Optional[str], learning_rate: Optional[float],
                 kl_cost: Optional[float], gamma: Optional[float], seed: int,
                 log_every: int, overwrite: bool, jit_compile: bool,
                 num_actors: Optional[int]) -> TrainResult:
  """`train_agents` for `atari/<Game>`: `atari_training.train_atari`.

  Imported here only, so toy-environment runs need neither Reverb nor the ALE.
  """
  # pylint: disable=g-import-not-at-top
  from lpg_tf.envs import atari
  from lpg_tf.experiments import atari_training
  # pylint: enable=g-import-not-at-top
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
