"""lpg_tf.shapes and the boundary checks that use it: a wrong axis fails loudly."""

from absl.testing import absltest
import tensorflow as tf

from lpg_tf import shapes
from lpg_tf import types
from lpg_tf.agents import networks
from lpg_tf.agents import torsos
from lpg_tf.learning import optimizers
from lpg_tf.learning import update_step
from lpg_tf.meta import meta_objective
from lpg_tf.rules import lpg

L, T, B, A, M, S = 2, 5, 3, 4, 6, 7


def trajectory(num_lifetimes=L, steps=T):
  zeros = tf.zeros([num_lifetimes, steps, B])
  return types.Trajectory(
      observation=tf.zeros([num_lifetimes, steps + 1, B], tf.int32),
      action=tf.zeros([num_lifetimes, steps, B], tf.int32), reward=zeros,
      discount=zeros + 1.0, episode_return=zeros,
      next_observation=tf.zeros([num_lifetimes, steps, B], tf.int32))


def outputs(num_lifetimes=L, steps=T + 1):
  return types.AgentOutput(tf.zeros([num_lifetimes, steps, B, A]),
                           tf.zeros([num_lifetimes, steps, B, M]),
                           tf.zeros([num_lifetimes, steps, B]))


class AssertShapesTest(absltest.TestCase):

  def test_accepts_matching_named_dimensions(self):
    shapes.assert_shapes("f", [("x", tf.zeros([2, 3]), ["L", None]),
                               ("y", tf.zeros([2]), ["L"]),
                               ("z", None, ["L"])])

  def test_rejects_rank_size_and_inconsistent_names(self):
    with self.assertRaisesRegex(ValueError, "f: x has shape .*expected rank 2"):
      shapes.assert_shapes("f", [("x", tf.zeros([2]), ["L", None])])
    with self.assertRaisesRegex(ValueError, r"expected \[3\]"):
      shapes.assert_shapes("f", [("x", tf.zeros([2]), [3])])
    with self.assertRaisesRegex(ValueError, r"y has shape \(4,\), expected \[L=2\]"):
      shapes.assert_shapes("f", [("x", tf.zeros([2, 3]), ["L", None]),
                                 ("y", tf.zeros([4]), ["L"])])

  def test_prefix_only_leaves_trailing_axes_free(self):
    shapes.assert_shapes("f", [("x", tf.zeros([2, 3, 4]), ["L"]),
                               ("y", tf.zeros([2]), ["L"])], prefix_only=True)
    with self.assertRaises(ValueError):
      shapes.assert_shapes("f", [("x", tf.zeros([3, 3]), ["L"]),
                                 ("y", tf.zeros([2]), ["L"])], prefix_only=True)


class BoundaryChecksTest(absltest.TestCase):

  def test_meta_objective_refuses_mismatched_lifetimes_or_steps(self):
    per_l = tf.zeros([L])
    args = (per_l, per_l, per_l, per_l, meta_objective.MetaObjectiveCosts())
    meta_objective.meta_objective(outputs(), trajectory(), tf.zeros([L, T + 1, B]),
                                  *args)
    with self.assertRaisesRegex(ValueError, "critic_values"):
      meta_objective.meta_objective(outputs(), trajectory(),
                                    tf.zeros([L, T, B]), *args)
    with self.assertRaisesRegex(ValueError, "gamma"):
      meta_objective.meta_objective(outputs(), trajectory(),
                                    tf.zeros([L, T + 1, B]), tf.zeros([L + 1]),
                                    *args[1:])
    with self.assertRaisesRegex(ValueError, "T \\+ 1"):
      meta_objective.meta_objective(outputs(steps=T + 2), trajectory(),
                                    tf.zeros([L, T + 2, B]), *args)

  def test_rule_inputs_refuse_outputs_of_another_length(self):
    next_logits = tf.zeros([L, T, B, M])
    update_step.rule_inputs(trajectory(), outputs(), next_logits, tf.zeros([L]))
    with self.assertRaisesRegex(ValueError, "outputs.baseline|policy_logits"):
      update_step.rule_inputs(trajectory(), outputs(num_lifetimes=L + 1),
                              next_logits, tf.zeros([L]))
    with self.assertRaisesRegex(ValueError, "next_prediction_logits"):
      update_step.rule_inputs(trajectory(), outputs(), next_logits[:, 1:],
                              tf.zeros([L]))

  def test_update_refuses_per_lifetime_values_of_another_size(self):
    agent = networks.AgentNetwork(L, (), tf.int32, A, torsos.tabular(), M, S,
                                  seed=0)
    optimiser = optimizers.Optimiser(optimizers.SGD)
    rule = lpg.LPG(hidden_size=4, prediction_size=M)
    params = agent.params
    with self.assertRaisesRegex(ValueError, "update_groups: learning_rate"):
      update_step.update(agent.apply, rule, optimiser, params,
                         optimiser.init(params), trajectory(), tf.zeros([L]),
                         tf.ones([L + 1]), tf.ones([L]))

  def test_lpg_refuses_lifetime_major_inputs(self):
    rule = lpg.LPG(hidden_size=4, prediction_size=M)
    scalar = tf.zeros([T, B * L])
    inputs = types.RuleInputs(scalar, scalar, scalar, scalar,
                              tf.zeros([T, B * L, M]), tf.zeros([T, B * L, M]),
                              None)
    rule(inputs)
    with self.assertRaisesRegex(ValueError, "LPG: discount"):
      rule(inputs._replace(discount=tf.zeros([L, T, B])))
    with self.assertRaisesRegex(ValueError, "LPG: y_next"):
      rule(inputs._replace(y_next=tf.zeros([T + 1, B * L, M])))


if __name__ == "__main__":
  absltest.main()
