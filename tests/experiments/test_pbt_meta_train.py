"""lpg_tf/experiments/pbt_meta_train.py: settings refused before Ray starts, a
member's config, the exact copy of a member's state (exploit), and, marked
slow, a real population on a local Ray instance through the launcher."""

import glob
import json
import os
import shutil
import subprocess
import sys
import time

from absl.testing import absltest
import numpy as np
import psutil
import pytest
import ray

from lpg_tf import errors
from lpg_tf import export
from lpg_tf.experiments import meta_train
from lpg_tf.experiments import pbt_meta_train
from lpg_tf.experiments import run_directory
from lpg_tf.meta import pbt
from tests.meta.test_trainer import VALIDATED
from tests.meta.test_trainer import copy_of
from tests.meta.test_trainer import rule_weights
from tests.meta.test_trainer import straight_run
from tests.meta.test_trainer import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def settings(members=2, interval=2, modes=(), **overrides):
  return pbt_meta_train.Settings(
      config=tiny_config(**{"num_meta_steps": 4, **overrides}), members=members,
      interval=interval, modes=modes)


class CheckTest(absltest.TestCase):

  def test_bad_settings_are_refused_before_ray_starts(self):
    for bad, message in (
        (settings(members=1), "at least 2 members"),
        (settings(interval=8), "shorter than one exploit interval"),
        (settings(interval=3), "must be a multiple of --interval"),
        (settings(modes=("gradient", "sgd")), "Unknown optimiser modes"),
        (settings(**{"meta.learning_rate": 0.5}), "outside the PBT search space"),
        (settings(**{"population.envs": ("no/such_env",)}), "no/such_env")):
      workdir = os.path.join(self.create_tempdir().full_path, "pbt")
      with self.assertRaisesRegex(errors.ConfigError, message):
        pbt_meta_train.pbt_meta_train(bad, workdir)
      self.assertFalse(os.path.exists(workdir))
      self.assertFalse(ray.is_initialized())

  def test_a_second_population_in_the_same_directory_is_refused(self):
    workdir = self.create_tempdir().full_path
    with run_directory.RunLock(workdir):
      with self.assertRaisesRegex(run_directory.RunError, "in use"):
        pbt_meta_train.pbt_meta_train(settings(), workdir)
    self.assertFalse(ray.is_initialized())

  def test_a_directory_of_another_population_is_refused(self):
    workdir = self.create_tempdir().full_path
    pbt_meta_train._open(workdir, settings(members=2))  # pylint: disable=protected-access
    pbt_meta_train._open(workdir, settings(members=2))  # pylint: disable=protected-access
    with self.assertRaisesRegex(errors.ConfigError, "other settings"):
      pbt_meta_train._open(workdir, settings(members=3))  # pylint: disable=protected-access

  def test_members_start_from_the_config_then_draw_from_the_space(self):
    members = pbt_meta_train.check(settings(members=3, modes=("gradient", "hybrid")))
    config = tiny_config()
    self.assertEqual(members[0]["meta.learning_rate"], config.meta.learning_rate)
    self.assertEqual(members[0]["population.num_inner_updates"],
                     config.population.num_inner_updates)
    self.assertEqual([m["meta.optimiser"] for m in members],
                     ["gradient", "hybrid", "gradient"])
    self.assertNotEqual(members[1]["meta.learning_rate"],
                        members[2]["meta.learning_rate"])

  def test_member_config_sets_the_hyperparameters_and_the_periods(self):
    base = tiny_config(**{"num_meta_steps": 40})
    config = pbt_meta_train.member_config(
        base, {"meta.learning_rate": 0.004, "population.num_inner_updates": 3,
               "meta.es.sigma": 0.05, "meta.optimiser": "hybrid"}, interval=20)
    self.assertEqual(config.meta.learning_rate, 0.004)
    self.assertEqual(config.population.num_inner_updates, 3)
    self.assertEqual(config.meta.es.sigma, 0.05)
    self.assertEqual(config.meta.optimiser, "hybrid")
    self.assertEqual((config.validation.every, config.checkpoint_every), (20, 20))
    self.assertEqual(base.meta.learning_rate, tiny_config().meta.learning_rate)


def exploit(test, straight, donor):
  """Packages the run `donor` as a member's report at meta-step 2 and restores
  it into a copy of the run `straight` (a member with a run of its own, at
  meta-step 4); returns the recipient's directory and the record read back."""
  report = test.create_tempdir().full_path
  pbt_meta_train.package_member(donor, report, {
      "member": "donor", "meta_step": 2, "fitness": 0.25,
      "hyperparameters": HYPERPARAMETERS})
  recipient = copy_of(test, straight)
  return recipient, pbt_meta_train.restore_member(report, recipient)


HYPERPARAMETERS = {"meta.learning_rate": tiny_config().meta.learning_rate}


def fake_member(root, step):
  """A member directory as meta_train leaves it at a checkpoint (file names
  only: enough for what moves and what is counted)."""
  os.makedirs(os.path.join(root, meta_train.CHECKPOINT_DIR))
  os.makedirs(os.path.join(root, meta_train.RULE_DIR))
  for name in (f"ckpt-{step}.index", f"ckpt-{step}.data-00000-of-00001"):
    open(os.path.join(root, meta_train.CHECKPOINT_DIR, name), "w").close()
  with open(os.path.join(root, meta_train.CONFIG_NAME), "w") as f:
    f.write("{}")
  return root


class EnterMemberTest(absltest.TestCase):

  def test_the_lineage_says_why_a_member_runs(self):
    """start; a restart after a crash before the first report (own
    checkpoint, no report) is a resume; a report of its own is a resume,
    another member's an exploit."""
    root = self.create_tempdir().full_path
    lineage = os.path.join(root, pbt_meta_train.LINEAGE_NAME)
    member_dir = os.path.join(root, "members", "m")
    enter = lambda source: pbt_meta_train.enter_member(
        "m", member_dir, lineage, HYPERPARAMETERS, source)
    self.assertEqual(enter(None)["event"], "start")
    fake_member(member_dir, step=4)
    record = enter(None)
    self.assertEqual((record["event"], record["meta_step"]), ("resume", 4))
    for owner in ("m", "d"):
      report = self.create_tempdir().full_path
      pbt_meta_train.package_member(
          fake_member(self.create_tempdir().full_path, step=6), report,
          {"member": owner, "meta_step": 6, "fitness": 0.5,
           "hyperparameters": HYPERPARAMETERS})
      record = enter(report)
      self.assertEqual(record["meta_step"], 6)
      self.assertEqual(run_directory.checkpoint_numbers(
          os.path.join(member_dir, meta_train.CHECKPOINT_DIR)), [6])
    self.assertEqual(record["donor"], "d")
    self.assertEqual([r["event"] for r in pbt.read_lineage(lineage)],
                     ["start", "resume", "resume", "exploit"])


class ExploitTest(absltest.TestCase):

  def test_the_recipient_holds_the_donors_checkpoints_and_config(self):
    straight, at_ckpt_2 = straight_run()
    recipient, record = exploit(self, straight, at_ckpt_2)
    self.assertEqual((record["member"], record["fitness"]), ("donor", 0.25))
    checkpoints = os.path.join(at_ckpt_2, meta_train.CHECKPOINT_DIR)
    self.assertEqual(
        sorted(os.listdir(checkpoints)),
        sorted(os.listdir(os.path.join(recipient, meta_train.CHECKPOINT_DIR))))
    for name in os.listdir(checkpoints) + [meta_train.CONFIG_NAME]:
      source = (os.path.join(checkpoints, name) if name != meta_train.CONFIG_NAME
                else os.path.join(at_ckpt_2, name))
      copied = (os.path.join(recipient, meta_train.CHECKPOINT_DIR, name)
                if name != meta_train.CONFIG_NAME
                else os.path.join(recipient, name))
      with open(source, "rb") as a, open(copied, "rb") as b:
        self.assertEqual(a.read(), b.read(), name)
    self.assertEqual(run_directory.newest_intact_checkpoint(
        os.path.join(recipient, meta_train.CHECKPOINT_DIR)),
                     os.path.join(recipient, meta_train.CHECKPOINT_DIR, "ckpt-2"))

  @pytest.mark.slow
  def test_a_copied_member_continues_exactly_as_its_donor(self):
    """The recipient continues to meta-step 4: the donor's straight run's
    eta, and a report at the next interval."""
    straight, at_ckpt_2 = straight_run()
    recipient, _ = exploit(self, straight, at_ckpt_2)
    reports = []
    config = pbt_meta_train.member_config(
        tiny_config(**VALIDATED), HYPERPARAMETERS, interval=2)
    meta_train.meta_train(
        config, recipient, on_checkpoint=lambda s, n: reports.append((s, dict(n))),
        resumable_fields=tuple(pbt_meta_train.SEARCH_SPACE))
    for (name_a, a), (name_b, b) in zip(rule_weights(straight),
                                        rule_weights(recipient)):
      self.assertEqual(name_a, name_b)
      np.testing.assert_array_equal(a, b)
    self.assertEqual([s for s, _ in reports], [4])
    self.assertIn("validation/score", reports[0][1])


def population_command(workdir):
  """The launcher's command for two members of the tiny config, eight
  intervals of one meta-step (seven chances to copy a member: when one copies
  depends on the members' timing), and its environment."""
  return ([sys.executable, os.path.join(REPO, "launchers", "pbt_meta_train.py"),
           "--config=tests/experiments/tiny_meta_config.py",
           "--config.num_meta_steps=8", "--config.validation.lifetimes=1",
           "--members=2", "--interval=1", f"--workdir={workdir}"],
          dict(os.environ, PYTHONPATH=REPO))


@pytest.mark.slow
class LauncherTest(absltest.TestCase):

  def test_a_population_on_a_local_ray_instance(self):
    """Two members on a local Ray instance for eight intervals: lineage, result,
    the best member's rule, exploits that copy real reports, and a rerun that
    finds the population complete."""
    workdir = os.path.join(self.create_tempdir().full_path, "pbt")
    command, env = population_command(workdir)
    for _ in range(2):
      run = subprocess.run(command, cwd=REPO, env=env, capture_output=True,
                           text=True, timeout=1200, check=False)
      self.assertEqual(run.returncode, 0, run.stderr[-3000:])
    records = pbt.read_lineage(os.path.join(workdir, pbt_meta_train.LINEAGE_NAME))
    starts = [r for r in records if r["event"] == "start"]
    self.assertLen(starts, 2)
    members = {r["member"] for r in starts}
    exploits = [r for r in records if r["event"] == "exploit"]
    self.assertNotEmpty(exploits)
    # A last report (meta-step 8) ends its member: no copy or pause restarts
    # a member with nothing left to train.
    self.assertEmpty([r for r in records if r["meta_step"] == 8])
    for record in exploits:
      self.assertIn(record["donor"], members - {record["member"]})
      self.assertBetween(record["meta_step"], 1, 7)
      for key, bounds in pbt_meta_train.SEARCH_SPACE.items():
        self.assertBetween(record["hyperparameters"][key], bounds.low, bounds.high)
    with open(os.path.join(workdir, pbt_meta_train.RESULT_NAME)) as f:
      result = json.load(f)
    self.assertEqual({m["member"] for m in result["members"]}, members)
    for member in result["members"]:
      self.assertEqual(member["meta_step"], 8)
      self.assertNotIn("holds_report_of", member)
    best = max(result["members"], key=lambda m: m["fitness"])
    self.assertEqual(result["best"], best["member"])
    rule = meta_train.build_rule(tiny_config())
    export.load_rule_into(rule, os.path.join(workdir, pbt_meta_train.RULE_DIR))
    exported = sorted(v.numpy().tobytes() for v in rule.variables)
    reported = meta_train.build_rule(tiny_config())
    export.load_rule_into(reported, os.path.join(best["checkpoint"],
                                                 pbt_meta_train.RULE_DIR))
    self.assertEqual(exported, sorted(v.numpy().tobytes() for v in reported.variables))
    shutil.rmtree(workdir)

  def test_a_killed_population_continues_when_the_command_runs_again(self):
    """kill -9 of the launcher once a member has reported: the Ray processes
    it started exit with it, its lock goes with it, and the same command
    finishes the population from the members' reports (no member starts
    over)."""
    workdir = os.path.join(self.create_tempdir().full_path, "pbt")
    command, env = population_command(workdir)
    launcher = subprocess.Popen(command, cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    reports = os.path.join(workdir, pbt_meta_train.RAY_DIR,
                           pbt_meta_train.EXPERIMENT_NAME, "*", "checkpoint_*")
    deadline = time.monotonic() + 900
    while not glob.glob(reports):
      self.assertIsNone(launcher.poll(), "the population ended before a report")
      self.assertLess(time.monotonic(), deadline)
      time.sleep(1)
    started = psutil.Process(launcher.pid).children(recursive=True)
    self.assertNotEmpty(started)
    launcher.kill()
    launcher.wait()
    _, alive = psutil.wait_procs(started, timeout=120)
    self.assertEmpty(alive, [p.cmdline()[:3] for p in alive if p.is_running()])
    run = subprocess.run(command, cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=1200, check=False)
    self.assertEqual(run.returncode, 0, run.stderr[-3000:])
    records = pbt.read_lineage(os.path.join(workdir, pbt_meta_train.LINEAGE_NAME))
    self.assertLen([r for r in records if r["event"] == "start"], 2)
    with open(os.path.join(workdir, pbt_meta_train.RESULT_NAME)) as f:
      result = json.load(f)
    self.assertEqual([m["meta_step"] for m in result["members"]], [8, 8])
    shutil.rmtree(workdir)


if __name__ == "__main__":
  absltest.main()
