"""Meta-testing on Atari (Section 4.5, Appendix B.2): train agents from scratch.

The Atari side of `launchers/train_agent.py` (`--env=atari/<Game>`). For each seed,
a fresh Table 4 agent (C(32)-C(64)-C(64)-D(512), Adam, alpha_lr 0.0005,
alpha_y 0.5, gamma 0.995, T = 20, 30 environments) is trained by an update rule
through the Reverb actor/learner pipeline (`lpg_tf.distributed.pipeline`):
actor processes play the game with the latest parameters and stream unrolls, the
learner applies the rule's update (`update_step.update`, L = 1) to batches of all
30 environments.

  * An exported LPG rule is used with Eq. 7's action-independent baseline
    (Appendix B.2: "subtracting a baseline slightly improves the performance on
    Atari games"), whatever its export says; "a2c" is the hand-designed rule.
  * Seeds run one after another, each with its own server and actors.
  * `steps` counts agent steps per seed (transitions the learner consumed);
    frames = steps x 4 (frame skip), the paper's x axis (Figure 10).

Output in `workdir`, written as training goes:
  * `curve.csv`: seed, env_steps, frames, episode_return (mean raw score of the
    episodes that ended since the previous point), episodes, human_normalised
    (empty for games without reference scores);
  * `tb/`: TensorBoard scalars against frames: episode_return/seed_i,
    human_normalised/seed_i, loss, policy_entropy and frames_per_s per seed;
  * `curve.png` (at the end): return against frames, one line per seed, their
    mean with a shaded standard-error band, and the random agent's reference
    score as a dashed line.

Progress: every `log_every` updates a console line with frames done, frames/s
and the time left (measured between lines, so actor start-up and XLA
compilation are excluded), the recent return (and human-normalised score) and
the policy entropy.
"""

import math
import os
import time
from typing import List, NamedTuple, Optional, Tuple

from absl import logging
import numpy as np

from lpg_tf import agents
from lpg_tf import errors
from lpg_tf import loggers
from lpg_tf import rules
from lpg_tf.analysis import curves
from lpg_tf.distributed import pipeline as pipeline_lib
from lpg_tf.envs import atari
from lpg_tf.experiments import agent_runs
from lpg_tf.learning import learner as learner_lib
from lpg_tf.rules import base as rule_base
from lpg_tf.rules import pretrained
from lpg_tf.rules import saved_model

DEFAULT_NUM_ACTORS = 2  # one per core of a 2-core machine.
CSV_FIELDS = ("seed", "env_steps", "frames", "episode_return", "episodes",
              "human_normalised")


class AtariResult(NamedTuple):
  """Summary of a finished run.

  Attributes:
    final_returns: `[seeds]` `curves.final_returns` of the logged raw returns
      (NaN for a seed that ended no episode).
    final_human_normalised: `[seeds]` the same, human-normalised; None for games
      without reference scores.
    env_steps: agent steps per seed.
    frames: frames per seed (env_steps x 4).
    frames_per_s: training throughput, mean over seeds.
  """
  final_returns: np.ndarray
  final_human_normalised: Optional[np.ndarray]
  env_steps: int
  frames: int
  frames_per_s: float


def _positive(name: str, value: Optional[float]) -> None:
  if value is None or value <= 0:
    raise errors.ConfigError(f"--{name} must be positive, got {value!r}")


def atari_rule(rule_name: str) -> rule_base.UpdateRule:
  """A2C, or an exported LPG rule (a directory, or one shipped with the
  package) with the Eq. 7 baseline (Appendix B.2)."""
  directory = pretrained.export_directory(rule_name) if rule_name else rule_name
  if directory not in rules.NAMES and directory and os.path.isdir(directory):
    return saved_model.SavedModelRule(directory, use_baseline=True)
  return rules.make(rule_name)


def train_atari(game: str, rule_name: str, workdir: str, steps: int,
                seeds: int, num_actors: int = DEFAULT_NUM_ACTORS,
                num_envs: int = agents.ATARI.num_envs,
                unroll_length: int = agents.ATARI.trajectory_length,
                learning_rate: Optional[float] = None,
                kl_cost: Optional[float] = None, gamma: Optional[float] = None,
                seed: int = 0, log_every: Optional[int] = None,
                overwrite: bool = False,
                jit_compile: bool = True,
                max_episode_frames: int = atari.MAX_EPISODE_FRAMES,
                sample_timeout_s: float = pipeline_lib.DEFAULT_SAMPLE_TIMEOUT_S
               ) -> AtariResult:
  """Trains `seeds` fresh agents on `game`, one after another; writes curves.

  Every argument is checked before any work starts.

  Args:
    game: `atari/<Game>`, any game ale-py ships.
    rule_name: "a2c", a rule shipped with the package (`pretrained[:NAME]`),
      or the directory of an exported LPG rule.
    workdir: where curves and summaries go; must be new or empty.
    steps: agent steps per seed (rounded up to whole updates of T x num_envs).
    seeds: independent agents; seed i uses seed + i.
    num_actors: actor processes; num_envs must be a multiple.
    num_envs: B, environments over all actors (30 in Table 4).
    unroll_length: T (20 in Table 4).
    learning_rate, kl_cost, gamma: alpha_lr, alpha_y, gamma; default Table
      4's (alpha: a shipped rule's own, from its hyperparameters.json).
    seed: the first seed.
    log_every: updates between logging points; default
      `agent_runs.default_log_every`.
    overwrite: allow replacing a run already in `workdir`.
    jit_compile: compile the learner's step with XLA.
    max_episode_frames: episodes are cut after this many frames.
    sample_timeout_s: the learner's longest wait for actors' data.

  Raises:
    ConfigError: an unknown game or rule, a bad count, or a used workdir.
    NoTrajectoriesError, ActorFailureError: the actors stopped delivering.
  """
  spec = atari.spec(game, max_episode_frames)
  for name, value in (("steps", steps), ("seeds", seeds),
                      ("unroll_length", unroll_length),
                      ("max_episode_frames", max_episode_frames),
                      ("sample_timeout_s", sample_timeout_s)):
    _positive(name, value)
  if log_every is not None:
    _positive("log_every", log_every)
  pipeline_lib.check_actor_counts(num_envs, num_actors)
  preset = agents.ATARI
  learning_rate, kl_cost = agent_runs.rule_hyperparameters(
      rule_name, game, learning_rate, kl_cost)
  lr = preset.learning_rate if learning_rate is None else learning_rate
  alpha_y = preset.kl_cost if kl_cost is None else kl_cost
  discount = preset.discount if gamma is None else gamma
  rule = atari_rule(rule_name)
  agent_runs.check_workdir(workdir, overwrite)
  os.makedirs(workdir, exist_ok=True)

  steps_per_update = unroll_length * num_envs
  num_updates = -(-steps // steps_per_update)
  log_every = log_every or agent_runs.default_log_every(num_updates)
  prediction_size = (rule.prediction_size
                     or agent_runs.DEFAULT_PREDICTION_SIZE)
  curve_log = agent_runs.CurveLogger(workdir, CSV_FIELDS)
  summaries = loggers.TensorBoardLogger(os.path.join(workdir, curves.TB_DIR))
  logging.info(
      "Training %d seeds on %s with %s: %d updates of %d steps (%d frames) "
      "each, %d actors x %d environments (alpha_lr=%g, alpha_y=%g, gamma=%g)",
      seeds, spec.name, rule_name, num_updates, steps_per_update,
      steps_per_update * atari.FRAME_SKIP, num_actors, num_envs // num_actors,
      lr, alpha_y, discount)
  points, rates = [], []
  try:
    for index in range(seeds):
      agent = agents.build_agent(spec, num_lifetimes=1, seed=seed + index,
                                 prediction_size=prediction_size,
                                 torso=preset.torso)
      with pipeline_lib.AtariPipeline(
          spec.name, num_actors, num_envs, unroll_length,
          {k: v.numpy() for k, v in agent.params.items()}, seed=seed + index,
          sample_timeout_s=sample_timeout_s,
          max_episode_frames=max_episode_frames) as pipeline:
        learner = learner_lib.Learner(
            agent, rule, preset.optimiser, learning_rate=[lr],
            kl_cost=[alpha_y], gamma=[discount],
            source=learner_lib.IteratorSource(pipeline.trajectories()),
            jit_compile=jit_compile)
        seed_points, rate = _train_seed(
            learner, pipeline, index, num_updates, log_every, spec.name,
            curve_log, loggers.Dispatcher([summaries, _console(
                spec.name, index, seeds,
                num_updates * steps_per_update * atari.FRAME_SKIP)]))
      points.append(seed_points)
      rates.append(rate)
  finally:
    curve_log.close()
    summaries.close()
  final, normalised, png = _summarise(
      curve_log, points, workdir, spec.name,
      f"{rule_name} on {spec.name} ({seeds} seeds, {num_actors} actors, "
      f"B={num_envs}, T={unroll_length})")
  logging.info("Done: final return per seed %s (human-normalised %s); curves "
               "in %s", np.array2string(final, precision=2),
               "n/a" if normalised is None else
               np.array2string(normalised, precision=3), png)
  env_steps = num_updates * steps_per_update
  return AtariResult(final, normalised, env_steps,
                     env_steps * atari.FRAME_SKIP, float(np.mean(rates)))


def _console(game: str, index: int, seeds: int,
             total_frames: int) -> loggers.ConsoleLogger:
  """The progress line of seed `index`: frames, return, entropy, time left."""
  return loggers.ConsoleLogger(
      f"{game} seed {index + 1}/{seeds} | frames", total=total_frames,
      unit="frames", keys=["episode_return/*", "human_normalised/*",
                           "policy_entropy/*"])


def _summarise(curve_log: agent_runs.CurveLogger, points: List[List[float]],
               workdir: str, game: str, title: str
              ) -> Tuple[np.ndarray, Optional[np.ndarray], str]:
  """curve.png, and each seed's final return, raw and human-normalised (None
  for games without reference scores)."""
  png = curves.plot_curves(curve_log.rows, os.path.join(workdir, curves.PNG_NAME),
                           title, atari.random_score(game),
                           x_label="frames", x_scale=atari.FRAME_SKIP)
  final = curves.final_returns(np.array(points).T)
  normalised = None
  if atari.random_score(game) is not None:
    normalised = np.array([atari.human_normalised(game, r) for r in final])
  return final, normalised, png


def _train_seed(learner: learner_lib.Learner,
                pipeline: pipeline_lib.AtariPipeline, index: int,
                num_updates: int, log_every: int, game: str,
                curve_log: loggers.Logger,
                logger: loggers.Logger) -> Tuple[List[float], float]:
  """The update loop of one seed; returns (its logged returns, frames/s).

  A point's return is the mean raw score of the episodes that ended since the
  previous point. `curve_log` gets one row per point, `logger` the point's
  scalars (tagged with the seed) against frames.
  """
  return_sum, episodes = 0.0, 0
  points: List[float] = []
  first_update_done = None
  steps = steps_at_first = 0
  for update in range(1, num_updates + 1):
    metrics = learner.step()
    pipeline.publish(update, learner.params)
    pipeline.check_actors()
    steps += int(metrics["env_steps"][0])
    return_sum += float(metrics["episode_return_sum"][0])
    episodes += int(metrics["episode_count"][0])
    if first_update_done is None:
      first_update_done, steps_at_first = time.time(), steps
    if update % log_every and update != num_updates:
      continue
    frames = steps * atari.FRAME_SKIP
    episode_return = return_sum / episodes if episodes else math.nan
    normalised = (None if math.isnan(episode_return)
                  else atari.human_normalised(game, episode_return))
    curve_log.write(frames, {
        "seed": index, "env_steps": steps, "frames": frames,
        "episode_return": episode_return, "episodes": episodes,
        "human_normalised": "" if normalised is None else normalised})
    scalars = {"episode_return": episode_return,
               "loss": float(metrics["loss"][0]),
               "policy_entropy": float(metrics["policy_entropy"][0])}
    if normalised is not None:
      scalars["human_normalised"] = normalised
    elapsed = time.time() - first_update_done
    if steps > steps_at_first and elapsed > 0:
      scalars["frames_per_s"] = (steps - steps_at_first) * atari.FRAME_SKIP / elapsed
    logger.write(frames, {f"{name}/seed_{index}": value
                          for name, value in scalars.items()})
    points.append(episode_return)
    return_sum, episodes = 0.0, 0
  elapsed = time.time() - first_update_done
  rate = ((steps - steps_at_first) * atari.FRAME_SKIP / elapsed
          if elapsed > 0 and steps > steps_at_first else math.nan)
  return points, rate
