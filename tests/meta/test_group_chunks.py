"""The meta-step as several compiled programs (population.groups_per_program):
how groups are cut into programs, the setting's checks, and the same eta as
one program, on one replica and on two."""

import os
import shutil
import tempfile
import threading

import numpy as np
import pytest
import tensorflow as tf

from lpg_tf import errors
from lpg_tf.experiments import config_validation
from lpg_tf.experiments import meta_train
from lpg_tf.meta import trainer as trainer_lib
from tests.meta import test_sharding
from tests.meta import test_trainer

# Programs differ from one program only in summation order.
ETA_RTOL = 1e-5
ETA_ATOL = 1e-7


@pytest.mark.parametrize("num_groups, per_shard, per_program, expected", [
    (25, 25, 4, [(0, 4), (4, 8), (8, 12), (12, 16), (16, 20), (20, 24),
                 (24, 25)]),
    (3, 3, 1, [(0, 1), (1, 2), (2, 3)]),
    (3, 3, 3, [(0, 3)]),
    # Programs never straddle shards, so each position repeats per shard.
    (6, 3, 2, [(0, 2), (2, 3), (3, 5), (5, 6)]),
    (6, 3, 5, [(0, 3), (3, 6)]),
])
def test_chunks_are_runs_of_at_most_n_groups_within_a_shard(
    num_groups, per_shard, per_program, expected):
  assert trainer_lib.chunk_bounds(num_groups, per_shard, per_program) == expected


@pytest.mark.parametrize("value", [-1, 1.5, True, "2", None])
def test_groups_per_program_must_be_a_non_negative_integer(value):
  with pytest.raises(errors.ConfigError, match="groups_per_program"):
    trainer_lib.check_groups_per_program(value)


def test_config_checks_groups_per_program():
  config_validation.check(test_trainer.tiny_config(
      **{"population.groups_per_program": 2}))
  with pytest.raises(errors.ConfigError,
                     match="groups_per_program must be a non-negative"):
    config_validation.check(test_trainer.tiny_config(
        **{"population.groups_per_program": -1}))
  with pytest.raises(errors.ConfigError, match="ES evaluates its members"):
    config_validation.check(test_trainer.tiny_config(
        **{"population.groups_per_program": 2, "meta.optimiser": "es"}))


def test_config_checks_concurrent_programs():
  config_validation.check(test_trainer.tiny_config(
      **{"population.concurrent_programs": False}))
  config = test_trainer.tiny_config()
  with config.unlocked():  # Past ml_collections' own type check.
    del config.population["concurrent_programs"]
    config.population.concurrent_programs = 1
  with pytest.raises(errors.ConfigError, match="concurrent_programs"):
    config_validation.check(config)


def eta_after_steps(groups_per_program: int, jit_compile: bool,
                    steps: int = 3, concurrent: bool = True) -> np.ndarray:
  """eta after `steps` meta-steps of tiny_config (3 groups: a chain and a grid
  world's two action spaces)."""
  config = test_trainer.tiny_config(
      **{"population.groups_per_program": groups_per_program,
         "population.concurrent_programs": concurrent})
  tf.random.set_seed(config.seed)  # eta_0 from Sonnet's initialisers.
  trainer = meta_train.build_trainer(config, meta_train.build_rule(config),
                                     jit_compile=jit_compile)
  for _ in range(steps):
    assert trainer.step()["meta_gradient_finite"] == 1.0
  return np.concatenate([v.numpy().ravel()
                         for v in trainer.rule.trainable_variables])


@pytest.mark.slow  # Three trainers traced: about 6 minutes each on 2 busy cores.
@pytest.mark.parametrize("jit_compile", [False, True])
def test_several_programs_give_the_eta_of_one(jit_compile):
  one_program = eta_after_steps(0, jit_compile)
  assert np.abs(one_program).max() > 0
  for groups_per_program in (1, 2):
    np.testing.assert_allclose(eta_after_steps(groups_per_program, jit_compile),
                               one_program, rtol=ETA_RTOL, atol=ETA_ATOL)


@pytest.mark.slow  # Two trainers traced: minutes.
def test_programs_run_one_after_another_give_the_same_eta():
  """Running the programs concurrently changes when they run, not what they
  compute: the same eta, bit for bit."""
  np.testing.assert_array_equal(eta_after_steps(1, True, concurrent=False),
                                eta_after_steps(1, True))


@pytest.mark.slow  # Three trainers in a fresh process: minutes.
def test_several_programs_on_two_replicas_give_the_eta_of_one(tmp_path):
  out = os.path.join(tmp_path, "chunked.npz")
  test_sharding.run_process("chunked", out)
  found = np.load(out)
  for key in ("chunked_1", "chunked_2"):
    np.testing.assert_allclose(found[key], found["one_program"],
                               rtol=ETA_RTOL, atol=ETA_ATOL)
  # Two shards of two groups, one group per program: the programs at each
  # position of a shard serve both shards.
  assert found["traces_1"] == 2


@pytest.mark.slow  # Continues a run with three programs traced: minutes.
def test_a_run_continues_with_another_number_of_groups_per_program():
  """A run checkpointed at meta-step 2 with one program continues with one
  group per program to the straight run's eta (summation order aside)."""
  straight, at_ckpt_2 = test_trainer.straight_run()
  continued = os.path.join(tempfile.mkdtemp(prefix="continued_"), "run")
  shutil.copytree(at_ckpt_2, continued)
  meta_train.meta_train(test_trainer.tiny_config(**{
      **test_trainer.VALIDATED, "population.groups_per_program": 1}), continued)
  for (name, expected), (_, found) in zip(test_trainer.rule_weights(straight),
                                          test_trainer.rule_weights(continued)):
    np.testing.assert_allclose(found, expected, rtol=ETA_RTOL, atol=ETA_ATOL,
                               err_msg=name)
  shutil.rmtree(os.path.dirname(continued))


@pytest.mark.skipif(trainer_lib.usable_cores() < 2,
                    reason="programs run at once only with 2 or more cores")
def test_the_programs_of_a_meta_step_run_at_once():
  """Each program is called from its own thread (trainer docstring): two
  calls that each wait for the other to have started both finish; called one
  after another, the first would wait in vain."""
  config = test_trainer.tiny_config(**{"population.groups_per_program": 1})
  trainer = meta_train.build_trainer(config, meta_train.build_rule(config),
                                     jit_compile=True)
  both_started = threading.Barrier(2, timeout=60)
  first_groups = []

  def program(states, first_group):
    first_groups.append(first_group)
    if first_group < 2:
      both_started.wait()  # BrokenBarrierError after 60 s alone.
    zero = tf.constant(0.0)
    return trainer_lib.MetaStepOutput(
        grads=[tf.zeros_like(v) for v in trainer.rule.trainable_variables],
        loss=zero, num_kept=tf.constant(float(first_group)),
        states=list(states), ends=[], metrics=[{} for _ in states])

  trainer._compiled_chunk = program  # pylint: disable=protected-access
  states = trainer.population.read()
  out = trainer._threaded_chunks(states)  # pylint: disable=protected-access
  assert sorted(first_groups) == [0, 1, 2]
  assert float(out.num_kept) == 3.0  # 0 + 1 + 2: every program added up.
  assert len(out.states) == len(states) == 3
