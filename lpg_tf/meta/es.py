"""Evolution strategies' gradient estimate for eta (OpenAI-ES, Salimans et al. 2017).

A gradient-free alternative to the meta-gradient: perturb eta with antithetic
Gaussian noise, eta_i = eta + sigma eps_i for members i < n and
eta_{n+i} = eta - sigma eps_i (mirrored sampling), score every member by the
returns its agents reach (`es_step`), shape the fitness by centred ranks and
estimate

  g_ascent = 1 / (P sigma) sum_i u_i eps_i,       P = 2n members,

the gradient of the Gaussian-smoothed shaped fitness. `gradient_estimate`
returns -g_ascent: a *loss* gradient, fed to the same Adam on eta as the
meta-gradient of Eq. 4.

Ranks instead of raw returns make the step invariant to the fitness' scale (the
training environments' returns differ by orders of magnitude) and to outliers.
Tied fitness values share their mean rank, so members that score alike
(e.g. no episode completed by any) contribute nothing rather than an arbitrary
direction. A non-finite fitness (a diverged member) ranks below every finite
one.

The noise is a pure function of a `[2]` seed (`lpg_tf.rng`), drawn with
TensorFlow's own kernels outside compiled functions, so a run with and without
XLA perturbs eta identically, and a resumed run draws what a straight one did.
"""

from typing import List, Sequence

import tensorflow as tf

from lpg_tf import errors
from lpg_tf import rng as lpg_rng


def check_population_size(population_size: int) -> None:
  """Raises ConfigError unless the population is a positive even number
  (antithetic pairs)."""
  if (not isinstance(population_size, int) or isinstance(population_size, bool)
      or population_size < 2 or population_size % 2):
    raise errors.ConfigError(
        "The evolution-strategies population must be an even number >= 2 "
        f"(antithetic pairs), got {population_size!r}")


def antithetic_noise(seed: tf.Tensor, shapes: Sequence[tf.TensorShape],
                     population_size: int) -> List[tf.Tensor]:
  """Standard normal noise for every member, `[P, *shape]` per shape.

  Rows i and n + i (n = P / 2) are eps_i and -eps_i: mirrored pairs.

  Args:
    seed: `[2]` int32 stateless seed.
    shapes: the shapes of eta's variables.
    population_size: P, even.
  """
  check_population_size(population_size)
  half = population_size // 2
  seeds = tf.unstack(lpg_rng.split(seed, len(shapes)))
  noise = []
  for shape, variable_seed in zip(shapes, seeds):
    eps = lpg_rng.normal([half] + tf.TensorShape(shape).as_list(), variable_seed)
    noise.append(tf.concat([eps, -eps], axis=0))
  return noise


def perturb(params: Sequence[tf.Tensor], noise: Sequence[tf.Tensor],
            sigma: float) -> List[tf.Tensor]:
  """Every member's eta_i = eta + sigma eps_i, `[P, *shape]` per variable."""
  return [p[tf.newaxis] + sigma * eps for p, eps in zip(params, noise)]


def centred_ranks(fitness: tf.Tensor) -> tf.Tensor:
  """Centred ranks of `[P]` fitness values, in [-0.5, 0.5], summing to 0.

  The lowest value gets -0.5 and the highest +0.5; tied values share their
  mean rank; NaN ranks lowest. With P = 1 the rank is 0.
  """
  fitness = tf.convert_to_tensor(fitness, tf.float32)
  tf.debugging.assert_rank(fitness, 1)
  fitness = tf.where(tf.math.is_nan(fitness),
                     tf.fill(tf.shape(fitness), -float("inf")), fitness)
  below = tf.reduce_sum(tf.cast(fitness[None, :] < fitness[:, None],
                                tf.float32), axis=1)
  equal = tf.reduce_sum(tf.cast(fitness[None, :] == fitness[:, None],
                                tf.float32), axis=1)
  rank = below + (equal - 1.0) / 2.0  # in [0, P - 1]
  size = tf.cast(tf.size(fitness), tf.float32)
  return rank / tf.maximum(size - 1.0, 1.0) - tf.where(size > 1, 0.5, 0.0)


def shaped_utilities(fitness: tf.Tensor) -> tf.Tensor:
  """`[P]` utilities from fitness `[P, G]` scored on G environment groups:
  each group's centred ranks, averaged over groups, so that no environment's
  return scale dominates."""
  fitness = tf.convert_to_tensor(fitness, tf.float32)
  tf.debugging.assert_rank(fitness, 2)
  ranks = [centred_ranks(column) for column in tf.unstack(fitness, axis=1)]
  return tf.reduce_mean(tf.stack(ranks, axis=1), axis=1)


def gradient_estimate(noise: Sequence[tf.Tensor], utilities: tf.Tensor,
                      sigma: float) -> List[tf.Tensor]:
  """The loss gradient -1 / (P sigma) sum_i u_i eps_i, one tensor per variable.

  Args:
    noise: `[P, *shape]` per variable, as `antithetic_noise` draws it.
    utilities: `[P]` shaped fitness (higher is better).
    sigma: the perturbations' standard deviation.
  """
  utilities = tf.convert_to_tensor(utilities, tf.float32)
  size = tf.cast(tf.shape(utilities)[0], tf.float32)
  return [-tf.tensordot(utilities, eps, axes=1) / (size * sigma)
          for eps in noise]
