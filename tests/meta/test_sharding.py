"""The population sharded over replicas (lpg_tf/meta/sharding.py): the
replicas' weighted mean and gather, eta equal on 1, 2 and 4 logical CPU
devices, every lifetime seen by the bandit, rematerialised inner updates on 2
replicas, resume on 2 replicas and on 1, two workers on localhost, and the
checks on the split.

Logical devices must be set before TensorFlow starts, so the multi-replica
runs happen in fresh processes (tests/meta/sharded_process.py).
"""

import json
import os
import socket
import subprocess
import sys
from unittest import mock

from absl.testing import absltest
import numpy as np
import pytest

from lpg_tf import errors
from lpg_tf.experiments import meta_train
from lpg_tf.meta import population as population_lib
from lpg_tf.meta import sharding
from tests.meta import sharded_process
from tests.meta import test_trainer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "tests", "meta", "sharded_process.py")
LAUNCHER = os.path.join(REPO, "launchers", "tpu_meta_train.py")
TINY_CONFIG = os.path.join(REPO, "tests", "experiments", "tiny_meta_config.py")
# Summation order is all that differs between replica counts.
ETA_TOLERANCE = 1e-6


def run_process(*args: str) -> None:
  result = subprocess.run(
      [sys.executable, SCRIPT, *args], capture_output=True, text=True,
      timeout=1200, cwd=REPO,
      env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3"))
  if result.returncode:
    raise AssertionError(f"{args} failed:\n{result.stderr[-4000:]}")


class HelpersTest(absltest.TestCase):

  def test_weighted_mean_and_gather_over_two_replicas(self):
    out = os.path.join(self.create_tempdir().full_path, "helpers.json")
    run_process("helpers", out)
    with open(out) as f:
      found = json.load(f)
    # Replica 0 holds shards 0, 1 (sum 1, weight 1), replica 1 shards 2, 3
    # (sum 5, weight 3): (1 * 1 + 5 * 3) / 4.
    self.assertEqual(found["weighted_mean"], [4.0])
    self.assertEqual(found["gathered"],
                     [[[float(i)], [i % 2 == 1]] for i in range(4)])


class SplitChecksTest(absltest.TestCase):

  def test_shards_must_split_over_the_replicas(self):
    sharding.check_replicas(4, 2)
    with self.assertRaisesRegex(
        errors.ConfigError,
        "population.shards=3 cannot be split evenly over 2 replicas: set "
        "--config.population.shards to a multiple of 2"):
      sharding.check_replicas(3, 2)

  def test_config_checks_before_work(self):
    for overrides, message in (
        ({"cpu_devices": 2}, "population.shards cannot be split evenly over "
         "config.cpu_devices"),
        ({"cpu_devices": 2, "population.shards": 2, "strategy": "default"},
         "needs config.strategy='auto'"),
        ({"population.shards": 3}, "lifetimes_per_env=2 cannot be cut into "
         "population.shards=3")):
      with self.subTest(overrides=overrides), \
          self.assertRaisesRegex(errors.ConfigError, message):
        meta_train.validate(test_trainer.tiny_config(**overrides))

  def test_multi_worker_needs_tf_config_before_work(self):
    workdir = os.path.join(self.create_tempdir().full_path, "run")
    environ = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    with mock.patch.dict(os.environ, environ, clear=True), \
        self.assertRaisesRegex(errors.ConfigError, "needs TF_CONFIG"):
      meta_train.meta_train(
          test_trainer.tiny_config(strategy="multi_worker"), workdir)
    self.assertFalse(os.path.exists(workdir))

  def test_shards_are_equal_sets_of_groups(self):
    spec = meta_train.population_spec(test_trainer.tiny_config(**{
        "population.lifetimes_per_env": 4, "population.shards": 2}))
    layout = population_lib.shard_layout(spec)
    self.assertEqual([(g.env_name, g.num_lifetimes) for g in layout],
                     [("chain/short", 2), ("tabular/sparse", 1),
                      ("tabular/sparse", 1)])


@pytest.mark.slow
class ReplicaCountTest(absltest.TestCase):
  """One population of 4 shards on 1, 2 and 4 replicas (minutes: a trainer is
  traced per replica count)."""

  def test_eta_and_bandit_do_not_depend_on_the_replica_count(self):
    tmp = self.create_tempdir().full_path
    run_process("trainer", os.path.join(tmp, "a.npz"), "1", "4")
    run_process("trainer", os.path.join(tmp, "b.npz"), "2")
    found = {**np.load(os.path.join(tmp, "a.npz")),
             **np.load(os.path.join(tmp, "b.npz"))}
    lifetimes = sharded_process.SHARDS
    for replicas in (1, 2, 4):
      with self.subTest(replicas=replicas):
        np.testing.assert_allclose(found[f"eta_{replicas}"], found["eta_1"],
                                   rtol=0, atol=ETA_TOLERANCE)
        self.assertEqual(found[f"lifetimes_{replicas}"], lifetimes)
        # Every replica's lifetimes ended and fed the bandit.
        self.assertEqual(found[f"ended_{replicas}"], lifetimes)
        self.assertEqual(found[f"bandit_fed_{replicas}"], lifetimes)
    self.assertGreater(np.abs(found["eta_1"]).max(), 0)


  def test_rematerialised_on_two_replicas_gives_the_eta_of_one(self):
    out = os.path.join(self.create_tempdir().full_path, "r.npz")
    run_process("rematerialised", out)
    found = np.load(out)
    self.assertGreater(np.abs(found["kept_1"]).max(), 0)
    np.testing.assert_allclose(found["rematerialised_2"], found["kept_1"],
                               rtol=0, atol=ETA_TOLERANCE)

  def test_es_and_meta_gradient_steps_do_not_depend_on_the_replica_count(self):
    tmp = self.create_tempdir().full_path
    run_process("hybrid", os.path.join(tmp, "h.npz"), "1", "2")
    found = np.load(os.path.join(tmp, "h.npz"))
    self.assertGreaterEqual(found["es_steps_2"], 1)
    self.assertEqual(found["es_steps_1"], found["es_steps_2"])
    self.assertEqual(found["lifetimes_2"], sharded_process.SHARDS)
    np.testing.assert_allclose(found["eta_2"], found["eta_1"], rtol=0,
                               atol=ETA_TOLERANCE)
    self.assertGreater(np.abs(found["eta_1"]).max(), 0)


@pytest.mark.slow
class ResumeTest(absltest.TestCase):
  """A 2-replica meta_train run stopped after ckpt-2 and resumed (minutes)."""

  def test_resume_is_exact_on_two_replicas_and_redistributes_on_one(self):
    tmp = self.create_tempdir().full_path
    out = os.path.join(tmp, "resume.npz")
    run_process("resume", out, tmp)
    found = np.load(out)
    np.testing.assert_array_equal(found["resumed_on_2"], found["straight"])
    # One replica runs both shards: the same eta up to summation order.
    np.testing.assert_allclose(found["resumed_on_1"], found["straight"],
                               rtol=0, atol=ETA_TOLERANCE)


def free_ports(count: int) -> list:
  """`count` TCP ports free on localhost just now."""
  sockets = [socket.socket() for _ in range(count)]
  for sock in sockets:
    sock.bind(("localhost", 0))
  ports = [sock.getsockname()[1] for sock in sockets]
  for sock in sockets:
    sock.close()
  return ports


@pytest.mark.slow
class MultiWorkerTest(absltest.TestCase):
  """Two launcher processes on localhost under MultiWorkerMirroredStrategy
  (minutes)."""

  def test_two_workers_give_the_eta_of_one(self):
    root = self.create_tempdir().full_path
    flags = [f"--config={TINY_CONFIG}", "--config.population.shards=2",
             "--config.num_meta_steps=3", "--config.strategy=multi_worker"]
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(2)]}
    workers = []
    for index in range(2):
      tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
      log = open(os.path.join(root, f"worker{index}.log"), "w")
      self.addCleanup(log.close)
      workers.append(subprocess.Popen(
          [sys.executable, LAUNCHER, f"--workdir={root}/worker{index}", *flags],
          stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
          env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3",
                   TF_CONFIG=json.dumps(tf_config))))
    for index, worker in enumerate(workers):
      self.addCleanup(worker.kill)
      if worker.wait(timeout=1200):
        with open(os.path.join(root, f"worker{index}.log")) as f:
          raise AssertionError(f"worker {index} failed:\n{f.read()[-4000:]}")
    single = os.path.join(root, "single")
    meta_train.meta_train(test_trainer.tiny_config(**{
        "population.shards": 2, "num_meta_steps": 3, "strategy": "default"}),
        single)
    etas = [np.concatenate([x.ravel() for _, x in test_trainer.rule_weights(d)])
            for d in (f"{root}/worker0", f"{root}/worker1", single)]
    np.testing.assert_array_equal(etas[0], etas[1])
    np.testing.assert_allclose(etas[0], etas[2], rtol=0, atol=ETA_TOLERANCE)


if __name__ == "__main__":
  absltest.main()
