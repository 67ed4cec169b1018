"""Rematerialised inner updates (`recompute.recomputed`,
`meta.rematerialise_inner_updates`): the same gradients as keeping every
intermediate, with less kept for the backward pass."""

import numpy as np
import pytest
import tensorflow as tf

from lpg_tf.experiments import meta_train
from lpg_tf.meta import recompute
from tests.meta import test_trainer

_STEPS = 4


def _inner_update(theta: tf.Tensor, eta: tf.Tensor, data: tf.Tensor):
  """A toy Eq. 2: theta' = theta - 0.1 d/dtheta loss(theta; targets(eta)),
  the targets computed with the inner tape paused, as `update_groups` does
  around the rule."""
  with tf.GradientTape() as inner:
    inner.watch(theta)
    prediction = tf.tanh(data @ theta)
    with inner.stop_recording():
      target = tf.sin(data @ eta)
    loss = tf.reduce_sum(tf.square(prediction - target))
  grad = inner.gradient(loss, theta)
  return theta - 0.1 * grad, tf.shape(grad)[0]


def _meta_gradient(rematerialise: bool):
  """d/deta of a loss after _STEPS inner updates in a while loop."""

  @tf.function
  def gradient():
    # Made here, not closed over: a while loop's gradient body cannot capture
    # an eager tensor that the forward body captured.
    data = tf.reshape(tf.range(12, dtype=tf.float32) / 12.0 - 0.4, [4, 3])
    theta_0 = tf.constant([[0.3, -0.2], [0.1, 0.5], [-0.4, 0.2]])
    eta = tf.constant([[0.5, -0.1], [0.2, 0.3], [0.1, -0.6]])
    with tf.GradientTape() as outer:
      outer.watch(eta)

      def body(k, theta):
        if rematerialise:
          theta, _ = recompute.recomputed(
              lambda t, e: _inner_update(t, e, data), [theta, eta])
        else:
          theta, _ = _inner_update(theta, eta, data)
        return k + 1, theta

      _, theta = tf.while_loop(lambda k, _: k < _STEPS, body,
                               (tf.constant(0), theta_0),
                               maximum_iterations=_STEPS)
      loss = tf.reduce_sum(tf.square(tf.tanh(data @ theta) - 1.0))
    return outer.gradient(loss, eta)

  return gradient().numpy()


def test_recomputed_gives_the_kept_intermediates_second_order_gradient():
  kept = _meta_gradient(rematerialise=False)
  assert np.abs(kept).max() > 1e-4  # eta reaches the loss only through Eq. 2.
  np.testing.assert_allclose(_meta_gradient(rematerialise=True), kept,
                             rtol=1e-5, atol=1e-7)


def test_recomputed_refuses_a_function_that_reads_a_variable():
  variable = tf.Variable(2.0)

  @tf.function
  def gradient(x):
    with tf.GradientTape() as tape:
      tape.watch(x)
      (y,) = recompute.recomputed(lambda x: [x * variable], [x])
    return tape.gradient(y, x)

  with pytest.raises(TypeError, match="variables"):
    gradient(tf.constant(3.0))


def _accumulators(trainer) -> int:
  """The tensor lists the meta-step's loop gradient fills: one per
  intermediate of the inner update that its backward pass keeps."""
  graph = trainer._compiled_step.get_concrete_function(  # pylint: disable=protected-access
      trainer.population.read()).graph
  return sum(op.type == "EmptyTensorList" for op in graph.get_operations())


def test_rematerialised_inner_updates_keep_fewer_intermediates():
  counts = []
  for rematerialise in (False, True):
    config = test_trainer.tiny_config(
        **test_trainer.ONE_GROUP,
        **{"meta.rematerialise_inner_updates": rematerialise})
    counts.append(_accumulators(meta_train.build_trainer(
        config, meta_train.build_rule(config))))
  kept, rematerialised = counts
  assert rematerialised < kept / 2, counts


def _etas_and_losses(config, jit_compile: bool):
  results = []
  for rematerialise in (False, True):
    config.meta.rematerialise_inner_updates = rematerialise
    tf.random.set_seed(config.seed)
    trainer = meta_train.build_trainer(config, meta_train.build_rule(config),
                                       jit_compile=jit_compile)
    losses = [trainer.step()["meta_loss"] for _ in range(2)]
    results.append(([v.numpy() for v in trainer.rule.trainable_variables],
                    losses))
  return results


def _assert_same_meta_training(results):
  (kept_eta, kept_losses), (remat_eta, remat_losses) = results
  np.testing.assert_allclose(remat_losses, kept_losses, rtol=1e-5)
  for kept, rematerialised in zip(kept_eta, remat_eta):
    np.testing.assert_allclose(rematerialised, kept, rtol=1e-4, atol=1e-7)


def test_rematerialised_inner_updates_meta_train_alike():
  """A conv agent (random grid) and a chain: the same eta after two
  meta-steps either way, without XLA."""
  config = test_trainer.tiny_config(
      **{"population.envs": ("random/dense", "chain/short"),
         "population.sampled_action_spaces": True})
  _assert_same_meta_training(_etas_and_losses(config, jit_compile=False))


@pytest.mark.slow  # Two XLA compiles: about two minutes on 2 busy cores.
def test_rematerialised_inner_updates_meta_train_alike_with_xla():
  config = test_trainer.tiny_config(**test_trainer.ONE_GROUP)
  _assert_same_meta_training(_etas_and_losses(config, jit_compile=True))


def test_rematerialised_programs_traced_at_once_meta_train_alike():
  """Programs traced and run from threads (`concurrent_programs`), each
  substituting eta's values while it traces: the eta of programs run one
  after another. (Whether two traces overlap is up to the threads' timing,
  so this does not prove `meta_step._SUBSTITUTING` necessary.)"""
  etas = []
  for concurrent in (True, False):
    config = test_trainer.tiny_config(
        **{"population.groups_per_program": 1,
           "population.concurrent_programs": concurrent,
           "meta.rematerialise_inner_updates": True})
    tf.random.set_seed(config.seed)
    trainer = meta_train.build_trainer(config, meta_train.build_rule(config))
    for _ in range(2):
      trainer.step()
    etas.append([v.numpy() for v in trainer.rule.trainable_variables])
  for concurrent, one_after_another in zip(*etas):
    np.testing.assert_allclose(concurrent, one_after_another, rtol=1e-5,
                               atol=1e-8)
