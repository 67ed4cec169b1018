"""lpg_tf/analysis/y_probe.py: the policy-evaluation probe of y on a small grid."""

import json
import os

from absl.testing import absltest
import numpy as np
import tensorflow as tf

from lpg_tf import types
from lpg_tf.analysis import grid_values
from lpg_tf.analysis import value_regression
from lpg_tf.analysis import y_pictures
from lpg_tf.analysis import y_probe
from lpg_tf.envs import base
from lpg_tf.envs import grid_model
from lpg_tf.envs import grid_world
from lpg_tf.learning import learner as learner_lib
from lpg_tf.learning import optimizers
from lpg_tf.rules import base as rule_base
from lpg_tf.rules import lpg

ObjectType = grid_world.ObjectType
# 4 x 4 cells, a +1 and a -1 object that both come back: 64 states, values
# that differ from state to state under both fixed policies.
SMALL_GRID = grid_world.GridSpec(
    4, 4, (ObjectType(1, 1.0, 0.0, 0.2), ObjectType(1, -1.0, 0.5, 0.2)), 50)
INSTANCE = [3, 9]
GAMMA = 0.9
M = 6  # prediction size of the test rules
# SGD on a table takes a step of LEARNING_RATE * k / (T B) for a state visited
# k times in an update; Table 3's 20-80 suit 1936 states, not 36.
LEARNING_RATE = 16.0
SEED = 3
# The near-optimal policy's temperature: warmer than the probe's default, so
# that this small grid's near-optimal policy visits enough states.
TEMPERATURE = 0.1


def small_env():
  return grid_world.TabularGridWorld("tabular/small_test", SMALL_GRID,
                                     base.MOVE)


def small_lpg():
  rule = lpg.LPG(hidden_size=8, prediction_size=M)
  rule.build()
  return rule


class ValueOracleRule(rule_base.UpdateRule):
  """A test double whose y_hat is a fixed function of the true value.

  y_hat_0(s_t) = 0.1 + 0.8 (V^pi(s_t) - min V) / (max V - min V) rises
  linearly with the value; the other m - 1 components share the rest equally.
  A rule never sees states, so this one recognises s_t by the agent's scalar
  head, which it leaves at its random initialisation (its loss has no
  scalar-head term): every state's initial value is a distinct fingerprint.
  """

  def __init__(self, fingerprints, values):
    """fingerprints, values: `[L, S]` initial scalar head and V^pi per
    lifetime."""
    self._fingerprints = tf.constant(fingerprints, tf.float32)
    low = values.min(axis=1, keepdims=True)
    high = values.max(axis=1, keepdims=True)
    self._share = tf.constant(0.1 + 0.8 * (values - low) / (high - low),
                              tf.float32)

  @property
  def loss_config(self):
    return rule_base.LossConfig()

  @property
  def prediction_size(self):
    return M

  def __call__(self, inputs):
    num_lifetimes, num_states = self._fingerprints.shape
    head = tf.reshape(inputs.baseline[:-1],
                      [inputs.reward.shape[0], num_lifetimes, -1])  # [T, L, B]
    distance = tf.abs(head[..., None] - self._fingerprints[:, None])
    state = tf.one_hot(tf.argmin(distance, axis=-1), num_states)
    share = tf.reduce_sum(state * self._share[:, None], axis=-1)[..., None]
    y_hat = tf.concat([share, tf.tile((1.0 - share) / (M - 1),
                                      [1, 1, 1, M - 1])], axis=-1)
    logits = tf.math.log(tf.reshape(y_hat, inputs.y.shape))
    return types.RuleOutput(pi_hat=tf.zeros_like(inputs.reward),
                            y_hat=tf.nn.softmax(logits), baseline_target=None,
                            y_hat_logits=logits)


class YProbeTest(absltest.TestCase):

  def test_only_y_moves(self):
    """A few LPG updates through the learner: the policy the agent acts with
    is the given one before and after, y has moved in every visited state and
    nowhere else."""
    env = small_env()
    model = grid_model.tabular_model(env, INSTANCE)
    policies = y_probe.fixed_policies(model, GAMMA)
    agent = y_probe.PolicyEvaluationAgent(env.spec, policies, M, seed=0)
    states = tf.constant(np.tile(np.arange(model.num_states, dtype=np.int32),
                                 [2, 1]))
    before = agent.apply(agent.params, states)
    evaluation_source = y_probe.VisitCountingSource(
        env, 2, 8, 5, seed=1, instances=tf.constant([INSTANCE] * 2))
    learner = learner_lib.Learner(
        agent, small_lpg(), optimizers.SGD,
        learning_rate=np.full(2, LEARNING_RATE),
        kl_cost=np.full(2, 0.5), gamma=np.full(2, GAMMA),
        source=evaluation_source, jit_compile=False)
    for _ in range(3):
      learner.step()
    after = agent.apply(learner.params, states)
    np.testing.assert_allclose(tf.nn.softmax(after.policy_logits), policies,
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(after.policy_logits, before.policy_logits)
    _, visits = learner.source_state
    visited = visits.numpy() > 0
    moved = np.any(after.prediction_logits != before.prediction_logits, -1)
    self.assertGreater(visited.sum(), 10)
    np.testing.assert_array_equal(moved, visited)

  @classmethod
  def setUpClass(cls):
    """One probe: the value oracle under test, a random LPG (hidden 8) as
    the untrained reference, A2C's critic as the value learner."""
    super().setUpClass()
    env = small_env()
    model = grid_model.tabular_model(env, INSTANCE)
    policies = y_probe.fixed_policies(model, GAMMA, TEMPERATURE)
    values = np.stack([grid_values.policy_values(model, p, GAMMA)
                       for p in policies])
    fingerprints = y_probe.PolicyEvaluationAgent(
        env.spec, policies, M, seed=SEED).params["baseline"].numpy()[..., 0]
    cls.probe = y_probe.probe(
        ValueOracleRule(fingerprints, values), small_lpg(), env,
        INSTANCE, GAMMA, num_updates=60, learning_rate=LEARNING_RATE,
        kl_cost=5.0, num_envs=16, unroll_length=10, temperature=TEMPERATURE,
        seed=SEED, jit_compile=False)

  def test_probe_end_to_end(self):
    probe, result = self.probe, self.probe.result
    self.assertEqual(result.env_steps, 60 * 16 * 10)
    self.assertAlmostEqual(result.max_entropy, np.log(M))
    self.assertEqual([p.policy for p in result.policies],
                     list(y_probe.POLICIES))
    # The rule, the untrained rule and the value learner saw the same data.
    np.testing.assert_array_equal(probe.rule.visits, probe.untrained_rule.visits)
    np.testing.assert_array_equal(probe.rule.visits, probe.td.visits)
    for policy in result.policies:
      self.assertGreater(policy.states, 10)
      numbers = [*policy.rule, *policy.untrained_rule, *policy.td,
                 *policy.true_value_range]
      self.assertTrue(np.all(np.isfinite(numbers)), policy)
      self.assertLessEqual(policy.untrained_rule.entropy, np.log(M) + 1e-6)
    path = y_probe.write_json(
        result, os.path.join(self.create_tempdir().full_path, "probe.json"))
    with open(path) as f:
      written = json.load(f)
    self.assertEqual(written["policies"][0]["policy"], y_probe.UNIFORM)
    self.assertEqual(set(written["policies"][1]["untrained_rule"]),
                     set(value_regression.PredictionStatistics._fields))

  def test_picture(self):
    path = y_pictures.plot_probe(
        self.probe, os.path.join(self.create_tempdir().full_path, "probe.png"))
    self.assertGreater(os.path.getsize(path), 10_000)
    grid = y_pictures.all_present_map(self.probe.model,
                                      np.arange(self.probe.model.num_states))
    np.testing.assert_array_equal(grid, 4 * np.arange(16).reshape(4, 4) + 3)

  def test_detects_value_information_in_y(self):
    """y trained towards a linear code of the true value regresses onto V^pi;
    the same y regressed onto the values of other states (V^pi shuffled)
    does not."""
    probe = self.probe
    for index, policy in enumerate(probe.result.policies):
      self.assertGreater(policy.rule.held_out_r2, 0.9, policy)
      self.assertGreater(policy.rule.best_abs_correlation, 0.9, policy)
      # A random LPG's y is no blank: its backward LSTM sums future rewards
      # into y_hat, so y holds some value information (small in amplitude:
      # least squares does not see the scale).
      self.assertGreater(policy.rule.held_out_r2,
                         policy.untrained_rule.held_out_r2)
      self.assertGreater(policy.rule.spread, policy.untrained_rule.spread)
      visited = probe.rule.visits[index] >= probe.result.min_visits
      shuffled = np.random.default_rng(0).permutation(
          probe.true_values[index, visited])
      control = value_regression.prediction_statistics(
          probe.rule.y[index, visited], shuffled,
          value_regression.held_out_split(int(visited.sum()), SEED))
      self.assertLess(control.held_out_r2, 0.3)
      self.assertLess(control.best_abs_correlation, 0.5)


if __name__ == "__main__":
  absltest.main()
