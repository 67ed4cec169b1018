"""Evolution strategies' estimator (lpg_tf/meta/es.py): noise, ranks, gradient."""

import math

from absl.testing import absltest
import numpy as np
import tensorflow as tf

from lpg_tf import errors
from lpg_tf.meta import es

SHAPES = (tf.TensorShape([5, 6]), tf.TensorShape([20]))  # d = 50 parameters.


def quadratic_problem(seed):
  """eta, the optimum eta* and a diagonal curvature A for SHAPES."""
  rng = np.random.default_rng(seed)
  def draw(low, high):
    return [tf.constant(rng.uniform(low, high, s.as_list()), tf.float32)
            for s in SHAPES]
  return draw(-1.0, 1.0), draw(-1.0, 1.0), draw(0.5, 2.0)


def quadratic_loss(params, optimum, curvature):
  """`[P]` loss 1/2 (eta_i - eta*)^T A (eta_i - eta*) of members `[P, ...]`."""
  terms = [tf.reduce_sum(tf.reshape(a * tf.square(p - o), [p.shape[0], -1]), 1)
           for p, o, a in zip(params, optimum, curvature)]
  return 0.5 * tf.add_n(terms)


def es_cosine(seed, pairs, sigma=1e-3):
  """Cosine between the ES loss-gradient estimate and the true gradient
  A (eta - eta*) of the quadratic, fitness = -loss."""
  params, optimum, curvature = quadratic_problem(seed)
  noise = es.antithetic_noise(tf.constant([seed, 1]), SHAPES, 2 * pairs)
  fitness = -quadratic_loss(es.perturb(params, noise, sigma), optimum,
                            curvature)
  estimate = es.gradient_estimate(noise, es.centred_ranks(fitness), sigma)
  true = [a * (p - o) for p, o, a in zip(params, optimum, curvature)]
  flat = lambda xs: np.concatenate([x.numpy().ravel() for x in xs])
  e, t = flat(estimate), flat(true)
  return float(e @ t / np.linalg.norm(e) / np.linalg.norm(t))


def expected_cosine(pairs, dim, noise_factor=1.0):
  """The cosine that rank-shaped antithetic ES reaches on a linear fitness.

  Derivation. For small sigma the fitness of eta +- sigma eps_i is linear,
  f = f0 +- sigma |g| z_i with z_i = eps_i . g / |g| ~ N(0, 1); a quadratic's
  even term 1/2 sigma^2 eps^T A eps is ~1e-5 of the odd one at sigma = 1e-3.
  With 2n members, the centred rank of a member with fitness z is, for large
  n, Phi(z) - 1/2, so pair i contributes h(z_i) eps_i with
  h(z) = 2 Phi(z) - 1. Split eps_i = z_i g/|g| + w_i, w_i ~ N(0, I_{d-1}) on
  the orthogonal complement. Along g the sum is sum_i h(z_i) z_i
  ~ n E[h(z) z] = n 2 E[phi(z)] = n / sqrt(pi) (Stein's lemma); orthogonal to
  it its squared norm is ~ (d - 1) sum_i h(z_i)^2 ~ (d - 1) n E[h^2]
  = (d - 1) n / 3 (Phi(z) is uniform). So

    cos ~ 1 / sqrt(1 + rho),  rho = (pi / 3) (d - 1) / n.

  `noise_factor` scales rho: the single-estimate threshold doubles it, which
  needs the orthogonal part's squared norm 40% above its mean (a chi-square
  with d - 1 = 49 degrees of freedom: +2 standard deviations) and, at once,
  the parallel part 16% below its (2 standard deviations of a sum of n = 100
  terms h(z) z with standard deviation ~0.42): a joint chance well under 1e-3.
  """
  rho = noise_factor * (math.pi / 3.0) * (dim - 1) / pairs
  return 1.0 / math.sqrt(1.0 + rho)


class CosineTest(absltest.TestCase):

  PAIRS = 100  # P = 200 members.
  DIM = 50

  def test_estimate_points_along_the_true_gradient(self):
    threshold = expected_cosine(self.PAIRS, self.DIM, noise_factor=2.0)  # 0.70
    for seed in range(3):
      self.assertGreater(es_cosine(seed, self.PAIRS), threshold)

  def test_mean_cosine_matches_the_derivation(self):
    # Ten estimates: the mean's standard deviation is about 0.04 / sqrt(10).
    cosines = [es_cosine(seed, self.PAIRS) for seed in range(10, 20)]
    self.assertAlmostEqual(np.mean(cosines),
                           expected_cosine(self.PAIRS, self.DIM), delta=0.04)

  def test_larger_population_aligns_better(self):
    small = np.mean([es_cosine(seed, 10) for seed in range(10)])
    large = np.mean([es_cosine(seed, 400) for seed in range(10)])
    self.assertLess(small, expected_cosine(40, self.DIM))
    self.assertGreater(large, expected_cosine(200, self.DIM))


class NoiseTest(absltest.TestCase):

  def test_antithetic_pairs_share_noise(self):
    noise = es.antithetic_noise(tf.constant([3, 4]), SHAPES, 8)
    for eps in noise:
      self.assertEqual(eps.shape[0], 8)
      np.testing.assert_array_equal(eps[:4].numpy(), -eps[4:].numpy())
      flat = eps[:4].numpy().reshape(4, -1)
      self.assertTrue(np.all(np.abs(flat[0] - flat[1]) > 0))
    self.assertFalse(np.allclose(noise[0][0].numpy().ravel()[:20],
                                 noise[1][0].numpy()))

  def test_noise_is_a_function_of_the_seed(self):
    first = es.antithetic_noise(tf.constant([3, 4]), SHAPES, 4)
    again = es.antithetic_noise(tf.constant([3, 4]), SHAPES, 4)
    other = es.antithetic_noise(tf.constant([3, 5]), SHAPES, 4)
    for a, b, c in zip(first, again, other):
      np.testing.assert_array_equal(a.numpy(), b.numpy())
      self.assertFalse(np.any(a.numpy() == c.numpy()))

  def test_noise_is_standard_normal(self):
    eps = es.antithetic_noise(tf.constant([0, 0]), [tf.TensorShape([1000])],
                              100)[0].numpy()[:50].ravel()
    # 50,000 draws: standard errors 0.0045 (mean) and 0.0032 (std).
    self.assertAlmostEqual(eps.mean(), 0.0, delta=0.02)
    self.assertAlmostEqual(eps.std(), 1.0, delta=0.015)

  def test_odd_or_empty_population_is_refused(self):
    for size in (0, 3, 7, 2.0):
      with self.assertRaises(errors.ConfigError):
        es.antithetic_noise(tf.constant([0, 0]), SHAPES, size)


class RankTest(absltest.TestCase):

  def test_centred_ranks_by_hand(self):
    ranks = es.centred_ranks([3.0, -1.0, 10.0, 0.5, 2.0]).numpy()
    np.testing.assert_allclose(ranks, [0.25, -0.5, 0.5, -0.25, 0.0])

  def test_ranks_are_centred_in_the_unit_interval(self):
    fitness = np.random.default_rng(0).normal(size=37) * 1e4
    ranks = es.centred_ranks(fitness).numpy()
    self.assertEqual(ranks.min(), -0.5)
    self.assertEqual(ranks.max(), 0.5)
    self.assertAlmostEqual(ranks.sum(), 0.0, places=5)

  def test_ties_share_their_mean_rank_and_nan_is_lowest(self):
    ranks = es.centred_ranks([1.0, 1.0, np.nan, 5.0, 1.0]).numpy()
    np.testing.assert_allclose(ranks, [0.0, 0.0, -0.5, 0.5, 0.0])
    np.testing.assert_array_equal(es.centred_ranks([2.0, 2.0, 2.0]).numpy(),
                                  [0.0, 0.0, 0.0])

  def test_utilities_average_the_groups_ranks(self):
    fitness = [[1.0, 1000.0], [2.0, -1000.0], [3.0, 0.0]]
    np.testing.assert_allclose(es.shaped_utilities(fitness).numpy(),
                               [0.0, -0.25, 0.25])


class GradientTest(absltest.TestCase):

  def test_sign_is_that_of_a_loss_gradient(self):
    eps = tf.constant([[1.0, -2.0], [-1.0, 2.0]])  # one mirrored pair
    # The member at +eps scores higher: the ascent direction is +eps, so the
    # loss gradient is -eps / (2 sigma) x (0.5 - (-0.5)).
    grad = es.gradient_estimate([eps], es.centred_ranks([5.0, 1.0]), 0.1)[0]
    np.testing.assert_allclose(grad.numpy(), [-5.0, 10.0])

  def test_equal_fitness_gives_no_gradient(self):
    noise = es.antithetic_noise(tf.constant([1, 1]), SHAPES, 6)
    grads = es.gradient_estimate(noise, es.centred_ranks([0.0] * 6), 0.1)
    for g in grads:
      np.testing.assert_array_equal(g.numpy(), np.zeros(g.shape))


if __name__ == "__main__":
  absltest.main()
