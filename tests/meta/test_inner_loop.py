"""The meta-step's inner-update loop without XLA: one iteration at a time,
Grappler's memory optimiser off, and a population of mixed agent kinds
meta-trains with and without XLA.

Without XLA, Grappler may turn a gradient sum of the loop's gradient into a
named TemporaryVariable (meta_step.INNER_LOOP_PARALLEL_ITERATIONS); two
iterations in flight then create it twice (AlreadyExistsError). The first test
checks that neither the loop nor its gradient lets iterations overlap; a
trainer without XLA also turns the memory optimiser off
(meta_step.disable_grappler_memory_optimiser).
"""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2
from tensorflow.core.protobuf import rewriter_config_pb2
from tensorflow.python.eager import context

from lpg_tf.experiments import meta_train
from lpg_tf.meta import meta_step
from tests.meta import test_trainer

_WHILE_OPS = ("While", "StatelessWhile")

# An MLP agent with Adam (random grid), a tabular agent with SGD (its two
# action spaces: two groups) and a chain: four groups of different speeds.
MIXED = {"population.envs": ("random/small", "tabular/sparse",
                             "chain/distractor"),
         "population.num_inner_updates": 3}


def _loops_with_nested_loops(graph: tf.Graph):
  """Top-level while ops of `graph` whose body holds another while loop: the
  inner-update loop (its body rolls out) and its gradient (its body holds the
  rule's gradient loops)."""
  found = []
  for op in graph.get_operations():
    if op.type not in _WHILE_OPS:
      continue
    body = graph._get_function(op.get_attr("body").name)  # pylint: disable=protected-access
    if any(node.op in _WHILE_OPS for node in body.definition.node_def):
      found.append(op)
  return found


@pytest.mark.slow  # Traces a meta-step: about a minute on 2 busy cores.
def test_inner_update_loop_and_its_gradient_run_one_iteration_at_a_time():
  config = test_trainer.tiny_config(**test_trainer.ONE_GROUP)
  trainer = meta_train.build_trainer(config, meta_train.build_rule(config),
                                     jit_compile=False)
  graph = trainer._compiled_step.get_concrete_function(  # pylint: disable=protected-access
      trainer.population.read()).graph
  loops = _loops_with_nested_loops(graph)
  assert len(loops) >= 2  # The loop and its gradient.
  assert all(op.get_attr("parallel_iterations")
             == meta_step.INNER_LOOP_PARALLEL_ITERATIONS == 1 for op in loops)


def test_memory_optimiser_is_off_for_later_function_calls():
  meta_step.disable_grappler_memory_optimiser()
  off = rewriter_config_pb2.RewriterConfig.NO_MEM_OPT
  eager = context.context()
  assert eager.config.graph_options.rewrite_options.memory_optimization == off
  call_config = config_pb2.ConfigProto.FromString(
      eager.function_call_options.config_proto_serialized)
  assert call_config.graph_options.rewrite_options.memory_optimization == off


@pytest.mark.slow  # 4 (no XLA) and 7 (XLA) minutes on 2 busy cores.
@pytest.mark.parametrize("jit_compile", [False, True])
def test_mixed_population_meta_trains_with_and_without_xla(jit_compile):
  config = test_trainer.tiny_config(**MIXED)
  trainer = meta_train.build_trainer(config, meta_train.build_rule(config),
                                     jit_compile=jit_compile)
  before = [v.numpy() for v in trainer.rule.trainable_variables]
  for _ in range(3):
    numbers = trainer.step()
    assert numbers["meta_gradient_finite"] == 1.0
  after = [v.numpy() for v in trainer.rule.trainable_variables]
  assert all(np.all(np.isfinite(a)) for a in after)
  assert any(not np.array_equal(b, a) for b, a in zip(before, after))


def test_a_conv_group_meta_trains_alike_with_and_without_xla():
  """A random grid's conv agent runs one convolution per lifetime without XLA
  and im2col with it (`agents.layers.conv2d`): the same meta-loss and
  meta-gradient either way."""
  config = test_trainer.tiny_config(**{"population.envs": ("random/dense",),
                                       "population.sampled_action_spaces": True})
  grads, losses = [], []
  for jit_compile in (False, True):
    tf.random.set_seed(config.seed)
    trainer = meta_train.build_trainer(config, meta_train.build_rule(config),
                                       jit_compile=jit_compile)
    out = trainer._step_all()  # pylint: disable=protected-access
    losses.append(float(out.loss))
    grads.append([g.numpy() for g in out.grads])
  np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)
  # The second-order gradient through the convolutions of K updates differs
  # between the two programs by up to 0.5% of each tensor's norm (float
  # rounding, on one CPU); a wrong convolution gradient by its whole size.
  for without_xla, with_xla in zip(*grads):
    np.testing.assert_allclose(without_xla, with_xla, rtol=0,
                               atol=0.02 * np.linalg.norm(with_xla))
