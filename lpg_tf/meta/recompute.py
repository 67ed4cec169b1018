"""Rematerialisation: a computation whose gradient recomputes it.

The meta-gradient through K inner updates (Eq. 2 under the outer tape) keeps
every update's intermediates until the backward pass reaches it: for a conv
agent that is most of the meta-step's memory (configs/appendix_a.py's
random/very_dense group: about 180 MiB per inner update for 2 lifetimes). With
`recomputed`, the backward pass keeps only the computation's inputs and runs
it again when the gradient reaches it: one more forward pass of the
computation for memory that no longer grows with its intermediates. Both give
the same gradient, because the computation is a pure function of its inputs
(eta's values among them; every random draw in lpg_tf is stateless and keyed
by a carried seed).
"""

from typing import Callable, List, Optional, Sequence

import tensorflow as tf


def recomputed(fn: Callable[..., Sequence[tf.Tensor]],
               inputs: Sequence[tf.Tensor]) -> List[tf.Tensor]:
  """`fn(*inputs)`, differentiated by running `fn` again in the backward pass.

  For graphs only (a `tf.function`, where the meta-step runs): the backward
  pass differentiates the recomputation symbolically (`tf.gradients`), as a
  while loop's gradient does its body, so a tape that `fn` pauses
  (`GradientTape.stop_recording`, as an inner update does around the rule)
  hides nothing from it.

  Args:
    fn: a pure function of float tensors `inputs` returning a flat sequence of
      tensors. It must read no tf.Variable (pass their values in `inputs`; a
      while loop's gradient cannot reach a variable read inside a recomputed
      body), and it may take gradients itself (an inner update does): the
      gradient through it is then of second order, as without
      rematerialisation.
    inputs: float tensors: what the backward pass keeps.

  Returns:
    `fn(*inputs)` as a list. Gradients reach `inputs`; outputs that are not
    floats carry none.
  """

  @tf.custom_gradient
  def call(*args: tf.Tensor):
    outputs = list(fn(*args))

    def gradient(*output_grads: Optional[tf.Tensor]) -> List[tf.Tensor]:
      # Fresh tensors in the gradient's graph (a while loop's gradient body
      # captures `args` from the forward body) to differentiate with respect to.
      again_inputs = [tf.identity(x) for x in args]
      again = fn(*again_inputs)
      targets, target_grads = [], []
      for output, output_grad in zip(again, output_grads):
        if output.dtype.is_floating:
          targets.append(output)
          target_grads.append(tf.zeros_like(output) if output_grad is None
                              else output_grad)
      return tf.gradients(targets, again_inputs, grad_ys=target_grads,
                          unconnected_gradients=tf.UnconnectedGradients.ZERO)

    return outputs, gradient

  return call(*inputs)
