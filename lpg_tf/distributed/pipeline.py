"""One Atari training pipeline: Reverb server, actor processes, learner input.

  with pipeline.AtariPipeline("atari/Breakout", num_actors=2, num_envs=30,
                              unroll_length=20, initial_params=theta) as p:
    learner = Learner(..., source=IteratorSource(p.trajectories()))
    while ...:
      learner.step()
      p.publish(learner.num_updates, learner.params)
      p.check_actors()

On entry the server starts on localhost (a free port unless one is given), theta_0
is published, and `num_actors` actor processes start, each with
`num_envs // num_actors` environments. On exit, also through an exception or
KeyboardInterrupt, every actor process is terminated and the server stopped.
"""

import os
import shutil
import tempfile
from typing import Mapping, Optional

from absl import logging
import numpy as np
import reverb

from lpg_tf import errors
from lpg_tf.distributed import actors
from lpg_tf.distributed import learner_dataset
from lpg_tf.distributed import reverb_tables
from lpg_tf.envs import atari

DEFAULT_SAMPLE_TIMEOUT_S = 300.0  # actors start in ~10-60 s (TF import, XLA).


class ActorFailureError(RuntimeError):
  """An actor kept dying; the pool stopped restarting it."""


def check_actor_counts(num_envs: int, num_actors: int) -> None:
  """ConfigError unless the environments split evenly over >= 1 actors."""
  if num_actors is None or num_actors < 1:
    raise errors.ConfigError(f"--num_actors must be at least 1, got {num_actors!r}")
  if num_envs is None or num_envs < 1:
    raise errors.ConfigError(f"--num_envs must be positive, got {num_envs!r}")
  if num_envs % num_actors:
    raise errors.ConfigError(
        f"--num_envs={num_envs} does not split over --num_actors={num_actors}: "
        "every actor writes items of the same shape, so num_envs must be a "
        "multiple of num_actors (e.g. 30 envs over 1, 2, 3, 5, 6 or 10 actors)")


class AtariPipeline:
  """Server + actor pool + the learner's trajectory stream, as a context."""

  def __init__(self, game: str, num_actors: int, num_envs: int,
               unroll_length: int, initial_params: Mapping[str, np.ndarray],
               seed: int = 0,
               sample_timeout_s: float = DEFAULT_SAMPLE_TIMEOUT_S,
               max_episode_frames: int = atari.MAX_EPISODE_FRAMES,
               port: Optional[int] = None,
               max_restarts: int = actors.DEFAULT_MAX_RESTARTS,
               env_threads: int = 0):
    """Configures the pipeline; entering the context starts it.

    Args:
      game: `atari/<Game>`.
      num_actors: local actor processes (at least 1).
      num_envs: B, environments over all actors; a multiple of num_actors.
      unroll_length: T.
      initial_params: theta_0 `{name: [1, ...]}`, published before actors
        start.
      seed: actor i seeds its environments from seed * 1000 + i * E_actor.
      sample_timeout_s: the learner's longest wait for an unroll.
      max_episode_frames: the episodes' frame limit.
      port: the server's port; None picks a free one.
      max_restarts: restarts per actor before the pool gives up on it.
      env_threads: emulator threads per actor (0: ale-py's choice).
    """
    check_actor_counts(num_envs, num_actors)
    self._game = game
    self._num_actors = num_actors
    self._shape = reverb_tables.UnrollShape(
        unroll_length, num_envs // num_actors, atari.OBSERVATION_SHAPE)
    self._initial_params = dict(initial_params)
    self._seed = seed
    self._sample_timeout_s = sample_timeout_s
    self._max_episode_frames = max_episode_frames
    self._port = port
    self._max_restarts = max_restarts
    self._env_threads = env_threads
    self._server: Optional[reverb.Server] = None
    self._checkpoint_dir: Optional[str] = None
    self._publisher: Optional[reverb_tables.VariablePublisher] = None
    self._pool: Optional[actors.ActorPool] = None

  @property
  def server_address(self) -> str:
    """Where actors (also remote ones) connect, "host:port"."""
    if self._server is None:
      raise RuntimeError("The pipeline is not running.")
    return f"localhost:{self._server.port}"

  @property
  def pool(self) -> actors.ActorPool:
    if self._pool is None:
      raise RuntimeError("The pipeline is not running.")
    return self._pool

  def start(self) -> None:
    """Starts the server, publishes theta_0 and starts the actors."""
    self._checkpoint_dir = tempfile.mkdtemp(prefix="lpg_tf_reverb_")
    self._server = reverb_tables.make_server(
        self._shape, self._initial_params, queue_size=self._num_actors,
        checkpoint_dir=self._checkpoint_dir, port=self._port)
    client = reverb.Client(self.server_address)
    self._publisher = reverb_tables.VariablePublisher(client)
    self._publisher.publish(0, self._initial_params)
    configs = [
        actors.ActorConfig(
            server_address=self.server_address, game=self._game,
            actor_id=index,
            seed=self._seed * 1000 + index * self._shape.num_envs,
            max_episode_frames=self._max_episode_frames,
            env_threads=self._env_threads, parent_pid=os.getpid())
        for index in range(self._num_actors)
    ]
    self._pool = actors.ActorPool(configs, max_restarts=self._max_restarts)
    self._pool.start()
    logging.info("Reverb server at %s (host port %d for remote actors); %d "
                 "actors with %d environments each, pids %s",
                 self.server_address, self._server.port, self._num_actors,
                 self._shape.num_envs, self._pool.pids)

  def trajectories(self) -> learner_dataset.TrajectoryIterator:
    """The learner's input: `[1, T, num_envs, ...]` trajectories."""
    dataset = learner_dataset.make_dataset(
        self.server_address, self._num_actors, self._sample_timeout_s)
    return learner_dataset.TrajectoryIterator(
        dataset, self.server_address, self._sample_timeout_s,
        self.pool.status)

  def publish(self, learner_step: int,
              params: Mapping[str, np.ndarray]) -> None:
    """Makes theta after `learner_step` updates the actors' next read."""
    self._publisher.publish(learner_step, params)

  def check_actors(self) -> None:
    """Raises ActorFailureError once the pool has given up on an actor."""
    if self.pool.failure is not None:
      raise ActorFailureError(
          f"Stopping: {self.pool.failure}. Actors: {self.pool.status()}")

  def stop(self) -> None:
    """Terminates the actors and stops the server; safe to call twice."""
    if self._pool is not None:
      self._pool.stop()
    if self._publisher is not None:
      self._publisher.close()
      self._publisher = None
    if self._server is not None:
      self._server.stop()
      self._server = None
    if self._checkpoint_dir is not None:
      shutil.rmtree(self._checkpoint_dir, ignore_errors=True)
      self._checkpoint_dir = None

  def __enter__(self) -> "AtariPipeline":
    try:
      self.start()
    except BaseException:
      self.stop()
      raise
    return self

  def __exit__(self, *unused_exc) -> None:
    self.stop()
