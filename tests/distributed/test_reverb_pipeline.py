"""The Reverb actor/learner pipeline with a real server, real actor processes and
real ALE ROMs (lpg_tf/distributed/): items round-trip, dead actors come back,
an empty queue times out with a clear error, shutdown leaves nothing behind."""

import multiprocessing
import os
import signal
import shutil
import subprocess
import sys
import tempfile
import time

from absl.testing import absltest
import numpy as np
import pytest
import reverb

from lpg_tf import agents
from lpg_tf.distributed import learner_dataset
from lpg_tf.distributed import pipeline
from lpg_tf.distributed import reverb_tables
from lpg_tf.envs import atari

GAME = "atari/Pong"
T = 5
SHORT_EPISODE_FRAMES = 60  # 15 agent steps, so unrolls cross episode ends.
WAIT_S = 120.0  # actor start-up on a busy 2-core machine.
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _params(game=GAME):
  agent = agents.build_agent(atari.spec(game), num_lifetimes=1, seed=0,
                             torso=agents.ATARI.torso)
  return {name: value.numpy() for name, value in agent.params.items()}


def _pipeline(num_actors, num_envs, **kwargs):
  kwargs.setdefault("sample_timeout_s", WAIT_S)
  kwargs.setdefault("max_episode_frames", SHORT_EPISODE_FRAMES)
  kwargs.setdefault("params", _params())
  params = kwargs.pop("params")
  return pipeline.AtariPipeline(GAME, num_actors, num_envs, T, params, **kwargs)


def _dead(pid):
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return True
  return False


def _wait_until(condition, timeout_s=WAIT_S):
  deadline = time.time() + timeout_s
  while not condition():
    if time.time() > deadline:
      raise AssertionError("condition not met in time")
    time.sleep(0.2)


class TablesTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self._dir = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, self._dir, True)

  def test_variables_table_serves_the_latest_parameters(self):
    params = {"w": np.zeros([1, 3], np.float32), "b": np.ones([1], np.float32)}
    server = reverb_tables.make_server(
        reverb_tables.UnrollShape(T, 2, (84, 84, 4)), params, 2, self._dir)
    self.addCleanup(server.stop)
    client = reverb.Client(f"localhost:{server.port}")
    publisher = reverb_tables.VariablePublisher(client)
    for step in range(3):
      publisher.publish(step, {k: v + step for k, v in params.items()})
    step, latest = reverb_tables.fetch_variables(client)
    self.assertEqual(step, 2)
    np.testing.assert_array_equal(latest["w"], np.full([1, 3], 2.0))
    np.testing.assert_array_equal(latest["b"], [3.0])
    self.assertEqual(client.server_info()[reverb_tables.VARIABLES].current_size,
                     1)

  def test_learner_times_out_with_a_clear_error_when_no_actor_writes(self):
    server = reverb_tables.make_server(
        reverb_tables.UnrollShape(T, 2, (84, 84, 4)), {"w": np.zeros([1])},
        2, self._dir)
    self.addCleanup(server.stop)
    address = f"localhost:{server.port}"
    iterator = learner_dataset.TrajectoryIterator(
        learner_dataset.make_dataset(address, 2, timeout_s=1.0), address, 1.0,
        lambda: "actor 0: pid 1 dead (exit code 1), 0 restarts")
    start = time.time()
    with self.assertRaisesRegex(
        learner_dataset.NoTrajectoriesError,
        r"No trajectory arrived .* for 1 s\. The actors are not writing.*"
        r"actor 0: pid 1 dead"):
      next(iterator)
    self.assertLess(time.time() - start, 30)

  def test_an_actor_started_with_the_address_streams_unrolls(self):
    """The entry point for actors on other machines: only the address."""
    server = reverb_tables.make_server(
        reverb_tables.UnrollShape(T, 2, atari.OBSERVATION_SHAPE), _params(),
        1, self._dir)
    self.addCleanup(server.stop)
    address = f"localhost:{server.port}"
    reverb_tables.VariablePublisher(reverb.Client(address)).publish(0, _params())
    actor = subprocess.Popen(
        [sys.executable, "-m", "lpg_tf.distributed.actors",
         f"--server_address={address}", f"--game={GAME}", "--seed=3"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    self.addCleanup(actor.wait)
    self.addCleanup(actor.kill)
    iterator = learner_dataset.TrajectoryIterator(
        learner_dataset.make_dataset(address, 1, timeout_s=WAIT_S), address,
        WAIT_S)
    batch = next(iterator)
    self.assertEqual(batch.observation.shape, (1, T + 1, 2, 84, 84, 4))
    self.assertIsNone(actor.poll())


class PipelineTest(absltest.TestCase):
  """One pipeline of two actors, started once for both tests (starting it takes
  tens of seconds: every actor process imports TensorFlow and ALE): it streams
  three batches, then a KeyboardInterrupt inside its `with` shuts it down."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    running = _pipeline(num_actors=2, num_envs=4)
    cls.interrupt_propagated = False
    try:
      with running:
        trajectories = running.trajectories()
        cls.batches = [next(trajectories) for _ in range(3)]
        cls.pids = running.pool.pids
        cls.address = running.server_address
        raise KeyboardInterrupt
    except KeyboardInterrupt:
      cls.interrupt_propagated = True

  def test_items_round_trip_with_their_shapes(self):
    for batch in self.batches:
      self.assertEqual(batch.observation.shape, (1, T + 1, 4, 84, 84, 4))
      self.assertEqual(batch.observation.dtype, np.uint8)
      for field in ("action", "reward", "discount", "episode_return"):
        self.assertEqual(getattr(batch, field).shape, (1, T, 4), field)
      observation = batch.observation.numpy()[0]
      action, reward = batch.action.numpy()[0], batch.reward.numpy()[0]
      discount = batch.discount.numpy()[0]
      self.assertTrue(((action >= 0) & (action < 6)).all())
      self.assertTrue((np.abs(reward) <= 1.0).all())
      self.assertTrue(np.isin(discount, [0.0, 1.0]).all())
      # Real transitions shift the frame stack by one frame; a new episode's
      # stack follows a terminal one. So no auto-reset step slipped in.
      for t in range(T):
        for e in range(4):
          if discount[t, e]:
            np.testing.assert_array_equal(observation[t + 1, e, ..., :3],
                                          observation[t, e, ..., 1:])
          else:
            self.assertEqual(observation[t + 1, e, ..., :3].max(), 0)
    self.assertIn(0.0, np.concatenate([b.discount.numpy().ravel()
                                       for b in self.batches]))

  def test_shutdown_leaves_no_live_child_processes(self):
    self.assertTrue(self.interrupt_propagated)
    self.assertLen(self.pids, 2)
    self.assertTrue(all(_dead(pid) for pid in self.pids))
    self.assertEmpty(multiprocessing.active_children())
    with self.assertRaises(Exception):  # The server is gone.
      reverb.Client(self.address).server_info(timeout=2)


class ActorFaultsTest(absltest.TestCase):

  @pytest.mark.slow
  def test_a_killed_actor_is_restarted_and_the_stream_continues(self):
    with _pipeline(num_actors=1, num_envs=2) as running:
      trajectories = running.trajectories()
      next(trajectories)
      (old_pid,) = running.pool.pids
      os.kill(old_pid, signal.SIGKILL)
      _wait_until(lambda: running.pool.restarts == [1])
      (new_pid,) = running.pool.pids
      for _ in range(3):
        self.assertEqual(next(trajectories).observation.shape[1], T + 1)
      running.check_actors()
    self.assertNotEqual(old_pid, new_pid)
    self.assertTrue(_dead(old_pid))

  @pytest.mark.slow
  def test_an_actor_that_keeps_dying_is_reported(self):
    # Breakout's 4-action parameters: Pong actors refuse them and exit.
    with _pipeline(num_actors=1, num_envs=2, params=_params("atari/Breakout"),
                   max_restarts=1, sample_timeout_s=3.0) as running:
      _wait_until(lambda: running.pool.failure is not None)
      with self.assertRaisesRegex(pipeline.ActorFailureError,
                                  "actor 0 died 2 times"):
        running.check_actors()
      with self.assertRaisesRegex(learner_dataset.NoTrajectoriesError,
                                  "Local actors: actor 0: pid .* dead"):
        next(running.trajectories())


if __name__ == "__main__":
  absltest.main()
