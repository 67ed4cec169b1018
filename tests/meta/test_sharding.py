"""The population sharded over replicas (lpg_tf/meta/sharding.py): the
replicas' weighted mean and gather, eta equal on 1, 2 and 4 logical CPU
devices, every lifetime seen by the bandit, and the checks on the split.

Logical devices must be set before TensorFlow starts, so the multi-replica
runs happen in fresh processes (tests/meta/sharded_process.py).
"""

import json
import os
import subprocess
import sys

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


if __name__ == "__main__":
  absltest.main()
