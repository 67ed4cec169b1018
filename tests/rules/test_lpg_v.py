"""LPG-V (Section 4.1) and LPG without softmax y (Section 4.4): the rules'
targets, their TD(lambda) return, their gradient and their export."""

import json
import os
from unittest import mock

from absl.testing import absltest
import numpy as np
import tensorflow as tf

from lpg_tf import errors
from lpg_tf import export
from lpg_tf import rules
from lpg_tf import types
from lpg_tf.rules import lpg
from lpg_tf.rules import lpg_v
from lpg_tf.rules import lstm_backward
from lpg_tf.rules import saved_model
from tests.rules import test_lpg

T, N, H, LAMBDA = 6, 3, 8, 0.8


def value_inputs(seed=0, dtype=tf.float32):
  """RuleInputs with values y = v(s_t), y_next = v(s_{t+1}) `[T, N, 1]` drawn
  apart (y_next[t] need not be y[t + 1], as at a terminal step) and two
  terminal steps."""
  rng = np.random.default_rng(seed)
  discount = np.ones([T, N])
  discount[2, 0] = discount[4, 2] = 0.0
  return types.RuleInputs(
      reward=tf.constant(rng.normal(size=(T, N)), dtype),
      discount=tf.constant(discount, dtype), gamma=tf.fill([T, N], tf.constant(
          0.9, dtype)),
      pi_a=tf.constant(rng.uniform(0.1, 1.0, size=(T, N)), dtype),
      y=tf.constant(rng.normal(size=(T, N, 1)), dtype),
      y_next=tf.constant(rng.normal(size=(T, N, 1)), dtype), baseline=None)


def numpy_td_lambda(inputs, lambda_):
  """G_t = r_t + gamma d_t ((1 - lambda) v(s_{t+1}) + lambda G_{t+1}), by loop."""
  r, d, g = (x.numpy() for x in (inputs.reward, inputs.discount, inputs.gamma))
  v_next = inputs.y_next.numpy()[..., 0]
  returns = np.zeros_like(r)
  following = v_next[-1]
  for t in reversed(range(T)):
    following = r[t] + g[t] * d[t] * ((1 - lambda_) * v_next[t]
                                      + lambda_ * following)
    returns[t] = following
  return returns


class LPGVTest(absltest.TestCase):

  def test_value_target_is_the_td_lambda_return(self):
    rule = lpg_v.LPGV(hidden_size=H, td_lambda=LAMBDA)
    inputs = value_inputs()
    expected = numpy_td_lambda(inputs, LAMBDA)
    for portable in (False, True):
      out = rule(inputs, portable=portable)
      self.assertEqual(out.pi_hat.shape, (T, N))
      self.assertEqual(out.y_hat.shape, (T, N, 1))
      np.testing.assert_allclose(out.y_hat[..., 0], expected, rtol=1e-5,
                                 atol=1e-6)
    self.assertIsNone(out.baseline_target)
    self.assertIsNone(out.y_hat_logits)

  def test_learns_pi_hat_only_and_regresses_a_raw_value(self):
    rule = lpg_v.LPGV(hidden_size=H)
    rule.build()
    names = {v.name.split("/", 1)[1] for v in rule.variables}
    self.assertIn("pi_head/w:0", names)
    self.assertFalse([n for n in names if "y_head" in n])
    self.assertEqual(rule.kind, "lpg_v")
    self.assertEqual(rule.prediction_size, 1)
    self.assertFalse(rule.loss_config.y_softmax)
    with_baseline = lpg_v.LPGV(hidden_size=H, use_baseline=True)
    out = with_baseline(value_inputs())
    np.testing.assert_array_equal(out.baseline_target, out.pi_hat)

  def test_uses_the_hand_written_lstm_gradient_and_it_is_right(self):
    """pi_hat's gradient with respect to eta and to v, through the custom
    gradient of lstm_backward, equals autodiff of the plain-ops LSTM."""
    rule = lpg_v.LPGV(hidden_size=H, dtype=tf.float64)
    inputs = value_inputs(dtype=tf.float64)
    rule(inputs)
    probe = tf.constant(np.random.default_rng(3).normal(size=(T, N)))

    def gradients(portable):
      with tf.GradientTape() as tape:
        tape.watch([inputs.y, inputs.y_next])
        out = rule(inputs, portable=portable)
        loss = tf.reduce_sum(out.pi_hat * probe) + tf.reduce_sum(out.y_hat)
      return tape.gradient(loss, list(rule.trainable_variables)
                           + [inputs.y, inputs.y_next])

    custom = lstm_backward._backward_lstm  # pylint: disable=protected-access
    with mock.patch.object(lstm_backward, "_backward_lstm",
                           side_effect=custom) as used:
      hand_written = gradients(portable=False)
    self.assertEqual(used.call_count, 1)
    for a, b in zip(hand_written, gradients(portable=True)):
      np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)

  def test_rejects_lambda_outside_the_unit_interval(self):
    with self.assertRaisesRegex(errors.ConfigError, "td_lambda"):
      lpg_v.LPGV(td_lambda=1.5)


class RawPredictionLPGTest(absltest.TestCase):

  def test_y_hat_is_the_softmax_rules_logits(self):
    inputs = value_inputs()._replace(
        y=tf.random.normal([T, N, 4], seed=1),
        y_next=tf.random.normal([T, N, 4], seed=2))
    softmax_rule = lpg.LPG(hidden_size=H, prediction_size=4)
    raw_rule = lpg.LPG(hidden_size=H, prediction_size=4, y_softmax=False)
    softmax_rule.build()
    raw_rule.build()
    for a, b in zip(raw_rule.variables, softmax_rule.variables):
      a.assign(b)
    raw, soft = raw_rule(inputs), softmax_rule(inputs)
    np.testing.assert_allclose(raw.y_hat, soft.y_hat_logits, rtol=1e-6)
    np.testing.assert_allclose(raw.pi_hat, soft.pi_hat, rtol=1e-6)
    self.assertIsNone(raw.y_hat_logits)
    self.assertFalse(raw_rule.loss_config.y_softmax)
    self.assertTrue(softmax_rule.loss_config.y_softmax)


class ExportTest(absltest.TestCase):

  def test_an_exported_lpg_v_rule_is_a_rule(self):
    rule = lpg_v.LPGV(hidden_size=H, td_lambda=LAMBDA)
    path = os.path.join(self.create_tempdir().full_path, "rule")
    export.export_rule(rule, path)
    metadata = saved_model.read_metadata(path)
    self.assertEqual((metadata.kind, metadata.prediction_size,
                      metadata.y_softmax, metadata.td_lambda),
                     ("lpg_v", 1, False, LAMBDA))
    loaded = rules.make(path)
    self.assertEqual(loaded.prediction_size, 1)
    self.assertEqual(loaded.loss_config, rule.loss_config)
    inputs = value_inputs()
    out, expected = loaded(inputs), rule(inputs)
    self.assertEqual(out.pi_hat.shape, (T, N))
    np.testing.assert_allclose(out.pi_hat, expected.pi_hat, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(out.y_hat, expected.y_hat, rtol=1e-5,
                               atol=1e-6)
    # Its weights load into an LPG-V rule, never into an LPG.
    export.load_rule_into(lpg_v.LPGV(hidden_size=H), path)
    with self.assertRaisesRegex(errors.ConfigError,
                                "kind lpg_v \\(export\\) != lpg"):
      export.load_rule_into(lpg.LPG(hidden_size=H, prediction_size=1), path)

  def test_format_version_1_reads_as_lpg_with_softmax_y(self):
    path = self.create_tempdir().full_path
    os.makedirs(os.path.dirname(os.path.join(path, saved_model.METADATA_PATH)))
    with open(os.path.join(path, saved_model.METADATA_PATH), "w") as f:
      json.dump({"format": saved_model.FORMAT, "format_version": 1,
                 "hidden_size": 32, "prediction_size": 30,
                 "embedding_sizes": [16, 1], "use_baseline": False}, f)
    metadata = saved_model.read_metadata(path)
    self.assertEqual((metadata.kind, metadata.y_softmax, metadata.td_lambda),
                     ("lpg", True, None))


if __name__ == "__main__":
  absltest.main()


class MemberTargetsTest(absltest.TestCase):

  def test_each_member_reads_its_own_columns_with_its_own_eta(self):
    tf.random.set_seed(2)
    def make(n):  # two draws of value_inputs side by side, n <= 2 N columns
      both = zip(value_inputs(seed=0), value_inputs(seed=1))
      return types.RuleInputs(*[None if a is None else tf.concat([a, b], 1)[:, :n]
                                for a, b in both])
    test_lpg.check_member_targets(self, lpg_v.LPGV(hidden_size=8), make)
