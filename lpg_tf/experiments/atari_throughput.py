"""Frames per second of Atari training: the Reverb pipeline vs the bare emulator.

The library side of `launchers/atari_throughput.py`.

  * Pipeline: the training set-up of `atari_training` (actor processes, Reverb
    queue, an A2C learner updating a Table 4 agent on batches of all
    environments) for a fixed wall-clock time after a warm-up of a few updates
    (actor start-up and XLA compilation excluded). Frames are the agent steps
    the learner consumed x 4. We also report the share of the learner's time
    spent waiting for data: near 0 means the learner is the bottleneck, large
    means the actors are.
  * Raw: the same vector environment stepped with uniformly random actions in
    this process (`atari.raw_throughput`), no agent at all: the ceiling.
"""

import time
from typing import Dict, Iterator, List, NamedTuple, Sequence

from absl import logging

from lpg_tf import agents
from lpg_tf import rules
from lpg_tf import types
from lpg_tf.distributed import pipeline as pipeline_lib
from lpg_tf.envs import atari
from lpg_tf.learning import learner as learner_lib


class PipelineThroughput(NamedTuple):
  """One pipeline measurement.

  Attributes:
    num_actors: actor processes.
    frames_per_s: frames the learner consumed per second.
    updates: learner updates timed.
    learner_wait_fraction: share of the timed wall clock the learner spent
      waiting for the next batch.
  """
  num_actors: int
  frames_per_s: float
  updates: int
  learner_wait_fraction: float


class _TimedIterator:
  """Wraps an iterator and adds up the time spent in `next`."""

  def __init__(self, iterator: Iterator[types.Trajectory]):
    self._iterator = iterator
    self.wait_s = 0.0

  def __iter__(self) -> "_TimedIterator":
    return self

  def __next__(self) -> types.Trajectory:
    start = time.perf_counter()
    try:
      return next(self._iterator)
    finally:
      self.wait_s += time.perf_counter() - start


def measure_pipeline(game: str, num_actors: int, num_envs: int,
                     duration_s: float, warmup_updates: int = 3,
                     unroll_length: int = agents.ATARI.trajectory_length,
                     seed: int = 0) -> PipelineThroughput:
  """Trains A2C through the pipeline for `duration_s` after the warm-up."""
  spec = atari.spec(game)
  preset = agents.ATARI
  agent = agents.build_agent(spec, num_lifetimes=1, seed=seed, torso=preset.torso)
  with pipeline_lib.AtariPipeline(
      spec.name, num_actors, num_envs, unroll_length,
      {k: v.numpy() for k, v in agent.params.items()}, seed=seed) as pipeline:
    iterator = _TimedIterator(pipeline.trajectories())
    learner = learner_lib.Learner(
        agent, rules.make("a2c"), preset.optimiser,
        learning_rate=[preset.learning_rate], kl_cost=[preset.kl_cost],
        gamma=[preset.discount], source=learner_lib.IteratorSource(iterator))
    for _ in range(warmup_updates):
      learner.step()
      pipeline.publish(learner.num_updates, learner.params)
    iterator.wait_s = 0.0
    start = time.perf_counter()
    steps = updates = 0
    while time.perf_counter() - start < duration_s:
      steps += int(learner.step()["env_steps"][0])
      pipeline.publish(learner.num_updates, learner.params)
      pipeline.check_actors()
      updates += 1
    elapsed = time.perf_counter() - start
  result = PipelineThroughput(num_actors, steps * atari.FRAME_SKIP / elapsed,
                              updates, iterator.wait_s / elapsed)
  logging.info("%s", result)
  return result


def measure(game: str, actor_counts: Sequence[int], num_envs: int,
            duration_s: float, raw_steps: int) -> Dict[str, float]:
  """Raw emulator speed and pipeline speed for each number of actors.

  Returns:
    {"raw_frames_per_s": ..., "pipeline_frames_per_s_<n>_actors": ...,
     "learner_wait_fraction_<n>_actors": ..., plus the set-up}.
  """
  figures: Dict[str, float] = {"game": atari.canonical_name(game),
                               "num_envs": num_envs}
  figures["raw_frames_per_s"] = atari.raw_throughput(game, num_envs, raw_steps)
  logging.info("Raw vector env: %.0f frames/s", figures["raw_frames_per_s"])
  results: List[PipelineThroughput] = [
      measure_pipeline(game, n, num_envs, duration_s) for n in actor_counts]
  for result in results:
    figures[f"pipeline_frames_per_s_{result.num_actors}_actors"] = (
        result.frames_per_s)
    figures[f"learner_wait_fraction_{result.num_actors}_actors"] = (
        result.learner_wait_fraction)
  return figures
