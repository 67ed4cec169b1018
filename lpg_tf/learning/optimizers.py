"""Functional inner-loop optimisers with one learning rate per lifetime.

The inner loop must be differentiable (DESIGN.md idiom 1): parameters are tensors,
updates are pure functions `(params, grads, state, lr) -> (params, state)`, and a
meta-step can differentiate through K of them. Every tensor of `params` has a
leading lifetime axis L; `learning_rate` is `[L]`, so lifetimes sampled with
different alpha_lr (Table 3) share one batched update. SGD serves tabular agents,
Adam network agents (Table 3).
"""

from typing import Any, NamedTuple, Tuple

import tensorflow as tf

from lpg_tf.agents import presets

SGD = presets.SGD  # the names Table 3's rows (agents.presets) use.
ADAM = presets.ADAM
OPTIMISERS = (SGD, ADAM)


def _per_lifetime(value: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
  """Reshapes `[L]` to broadcast against `[L, ...]` tensor `like`."""
  return tf.reshape(value, [-1] + [1] * (len(like.shape) - 1))


class AdamState(NamedTuple):
  """Adam moments, per lifetime: count `[L]` and nests shaped like params."""
  count: tf.Tensor
  mu: Any
  nu: Any


class SgdState(NamedTuple):
  """SGD keeps only a per-lifetime update count `[L]` (for uniform bookkeeping)."""
  count: tf.Tensor


class Optimiser:
  """A functional optimiser over `[L, ...]` parameter nests.

  Attributes:
    kind: SGD or ADAM.
  """

  def __init__(self, kind: str, b1: float = 0.9, b2: float = 0.999,
               eps: float = 1e-8, eps_root: float = 1e-16):
    """Builds the optimiser.

    Args:
      kind: SGD or ADAM.
      b1, b2, eps: Adam's coefficients (Kingma & Ba 2015).
      eps_root: added to the second moment under the square root, which keeps the
        update differentiable where a gradient is exactly 0 (as optax does for
        meta-learning); 1e-16 leaves ordinary updates unchanged.
    """
    if kind not in OPTIMISERS:
      raise ValueError(f"Unknown optimiser {kind!r}; valid: {OPTIMISERS}")
    self.kind = kind
    self._b1, self._b2, self._eps, self._eps_root = b1, b2, eps, eps_root

  def init(self, params: Any) -> Any:
    """The initial state for `params` (every leaf `[L, ...]`)."""
    leaves = tf.nest.flatten(params)
    count = tf.zeros([tf.shape(leaves[0])[0]], tf.float32)
    if self.kind == SGD:
      return SgdState(count=count)
    zeros = tf.nest.map_structure(tf.zeros_like, params)
    return AdamState(count=count, mu=zeros, nu=zeros)

  def update(self, params: Any, grads: Any, state: Any,
             learning_rate: tf.Tensor) -> Tuple[Any, Any]:
    """One descent step `theta <- theta - lr * direction`; returns (params, state).

    A None gradient (a head the rule's loss does not use, e.g. y under A2C) counts
    as zero; IndexedSlices (from a tabular agent's gather) are made dense.
    """
    grads = tf.nest.map_structure(
        lambda p, g: tf.zeros_like(p) if g is None else tf.convert_to_tensor(g),
        params, grads, check_types=False)
    count = state.count + 1.0
    if self.kind == SGD:
      new_params = tf.nest.map_structure(
          lambda p, g: p - _per_lifetime(learning_rate, p) * g, params, grads)
      return new_params, SgdState(count=count)
    b1, b2 = self._b1, self._b2
    mu = tf.nest.map_structure(lambda m, g: b1 * m + (1.0 - b1) * g,
                               state.mu, grads)
    nu = tf.nest.map_structure(lambda v, g: b2 * v + (1.0 - b2) * tf.square(g),
                               state.nu, grads)
    correction1 = 1.0 - tf.pow(b1, count)
    correction2 = 1.0 - tf.pow(b2, count)

    def step(p, m, v):
      m_hat = m / _per_lifetime(correction1, m)
      v_hat = v / _per_lifetime(correction2, v)
      direction = m_hat / (tf.sqrt(v_hat + self._eps_root) + self._eps)
      return p - _per_lifetime(learning_rate, p) * direction

    new_params = tf.nest.map_structure(step, params, mu, nu)
    return new_params, AdamState(count=count, mu=mu, nu=nu)
