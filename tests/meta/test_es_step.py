"""The batched ES window (lpg_tf/meta/es_step.py): member layout and isolation."""

from absl.testing import absltest
import numpy as np
import tensorflow as tf

from lpg_tf import agents
from lpg_tf import types
from lpg_tf.meta import es_step
from lpg_tf.meta import population as population_lib
from lpg_tf.rules import lpg

SPEC = population_lib.PopulationSpec(
    env_names=("chain/short", "tabular/sparse"), lifetimes_per_env=2,
    num_envs=3, unroll_length=4, prediction_size=5, lifetime_scale=0.01)


def small_rule():
  tf.random.set_seed(0)
  rule = lpg.LPG(hidden_size=8, prediction_size=SPEC.prediction_size)
  rule.build()
  return rule


def member_params(rule, num_members, scale=0.2, seed=0):
  """eta for member 0 and random perturbations of it for the others."""
  rng = np.random.default_rng(seed)
  params = []
  for v in rule.trainable_variables:
    noise = scale * rng.normal(size=(num_members,) + tuple(v.shape))
    noise[0] = 0.0
    params.append(tf.constant(v.numpy()[None] + noise, tf.float32))
  return params


def member_groups(population, num_members):
  return [es_step.MemberGroup(group, agents.build_agent(
      group.env.spec, num_members * group.num_lifetimes, seed=[0, 0],
      prediction_size=SPEC.prediction_size)) for group in population.groups]


class MemberRuleTest(absltest.TestCase):

  def test_each_groups_member_block_is_read_by_its_own_eta(self):
    rule = small_rule()
    num_members, columns = 3, [2, 4]  # two groups, n_g columns per member
    params = member_params(rule, num_members)
    total = num_members * sum(columns)
    rng = np.random.default_rng(1)
    y = tf.nn.softmax(tf.constant(rng.normal(size=(4, total, 5)), tf.float32))
    inputs = types.RuleInputs(
        reward=tf.constant(rng.normal(size=(4, total)), tf.float32),
        discount=tf.ones([4, total]), gamma=tf.fill([4, total], 0.9),
        pi_a=tf.fill([4, total], 0.5), y=y, y_next=tf.reverse(y, [0]),
        baseline=None)
    out = es_step.MemberRule(rule, params, num_members, columns)(inputs)
    start = 0
    for n in columns:
      for member in range(num_members):
        for variable, value in zip(rule.trainable_variables, params):
          variable.assign(value[member])
        block = slice(start + member * n, start + (member + 1) * n)
        expected = rule(types.RuleInputs(*[
            None if x is None else x[:, block] for x in inputs]))
        np.testing.assert_allclose(out.pi_hat[:, block].numpy(),
                                   expected.pi_hat.numpy(), atol=1e-5)
        np.testing.assert_allclose(out.y_hat[:, block].numpy(),
                                   expected.y_hat.numpy(), atol=1e-5)
      start += num_members * n


class EvaluateMembersTest(absltest.TestCase):

  def test_window_below_two_updates_is_refused(self):
    rule = small_rule()
    with self.assertRaisesRegex(ValueError, "window must be >= 2"):
      es_step.evaluate_members(rule, [], [], member_params(rule, 3), 1,
                               SPEC.unroll_length)

  def test_the_centre_does_not_see_the_other_members(self):
    # The centre's lifetimes after the window are those of a window run by
    # eta alone: the members' rows neither mix with the centre's nor shift its
    # random streams.
    rule = small_rule()
    population = population_lib.Population(SPEC, seed=0)

    def evaluate(num_members):
      return es_step.evaluate_members(
          rule, member_groups(population, num_members), population.read(),
          member_params(rule, num_members), 3, SPEC.unroll_length)

    alone, with_members = evaluate(1), evaluate(5)
    for a, b in zip(alone, with_members):
      for x, y in zip(tf.nest.flatten(a.state), tf.nest.flatten(b.state)):
        np.testing.assert_allclose(x.numpy(), y.numpy(), atol=1e-5)
      np.testing.assert_array_equal(a.return_sum.numpy(), b.return_sum.numpy())
      self.assertEqual(b.fitness.shape, [4])
      self.assertTrue(np.all(np.isfinite(b.fitness.numpy())))

  def test_fitness_is_reward_per_step_and_nan_when_diverged(self):
    # M = 3 members x L = 2 lifetimes; member 0 (the centre) is not scored.
    late_reward = tf.constant([9.0, 9.0, 1.0, 3.0, 4.0, 8.0])
    finite = tf.constant([True, True, True, True, True, False])
    fitness = es_step.member_fitness(late_reward, finite, 3, late_steps=10)
    np.testing.assert_allclose(fitness.numpy(), [0.2, np.nan])


if __name__ == "__main__":
  absltest.main()
