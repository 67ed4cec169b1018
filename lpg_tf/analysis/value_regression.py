"""How much of the true values a prediction carries (Section 4.3, Figures 4-5).

Pure numpy statistics of per-state predictions against true values V(s):
for the m-dimensional prediction y(s) of LPG, its entropy, how much it varies
across states, the Pearson correlation of each component with V, and the R^2
of a least-squares linear regression y(s) -> V(s) on states held out from the
fit; for a scalar value estimate (TD), its correlation and held-out R^2 the
same way, as the reference a value learner reaches.
"""

from typing import NamedTuple

import numpy as np

CORRELATION_THRESHOLD = 0.5  # |r| above which a component "tracks" V.
HELD_OUT_FRACTION = 0.5  # of the states, left out of the regression's fit.


class PredictionStatistics(NamedTuple):
  """Statistics of y(s) `[N, m]` over N states against V(s) `[N]`.

  Attributes:
    entropy: mean over states of H(y(s)), in nats (at most ln m: uniform).
    spread: mean over states of the total-variation distance
      1/2 ||y(s) - mean_s y||_1 (as `meta_objective.target_spread` measures
      y_hat): 0 when y is the same vector in every state.
    best_abs_correlation: max over components of |Pearson r(y_k, V)|.
    best_component: the k attaining it.
    num_correlated_components: how many components have |r| above
      CORRELATION_THRESHOLD.
    held_out_r2: R^2 on the held-out states of the least-squares linear
      regression of V on y, with intercept, fitted on the others
      (`held_out_r2`).
  """
  entropy: float
  spread: float
  best_abs_correlation: float
  best_component: int
  num_correlated_components: int
  held_out_r2: float


class ScalarStatistics(NamedTuple):
  """Statistics of a scalar estimate v(s) `[N]` against V(s) `[N]`.

  Attributes:
    correlation: Pearson r(v, V).
    held_out_r2: R^2 on the held-out states of V ~ a v + b fitted on the others.
  """
  correlation: float
  held_out_r2: float


def held_out_split(num_states: int, seed: int,
                   fraction: float = HELD_OUT_FRACTION) -> np.ndarray:
  """`[num_states]` bool, True for the states the regression is fitted on.

  A seeded random split with round(fraction * num_states) states held out
  (at least 1 each side when num_states >= 2)."""
  held_out = int(round(fraction * num_states))
  held_out = min(max(held_out, 1), num_states - 1)
  order = np.random.default_rng(seed).permutation(num_states)
  fit = np.ones(num_states, bool)
  fit[order[:held_out]] = False
  return fit


def correlations(features: np.ndarray, target: np.ndarray) -> np.ndarray:
  """`[K]` Pearson r of each column of `features` `[N, K]` with `target` `[N]`;
  0 for a constant column (it carries nothing about the target)."""
  x = features - features.mean(axis=0)
  t = target - target.mean()
  norm = np.sqrt(np.sum(x**2, axis=0) * np.sum(t**2))
  # Exactly constant columns: their centred values are rounding noise.
  varies = (np.ptp(features, axis=0) > 0) & (norm > 0)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(varies, x.T @ t / norm, 0.0)


def held_out_r2(features: np.ndarray, target: np.ndarray,
                fit: np.ndarray) -> float:
  """R^2 on the states `~fit` of the least-squares fit target ~ features @ w + b
  on the states `fit`.

  1 - SSE / SST with SST around the held-out mean, so a constant prediction
  scores at most 0. Least squares does not care about the features' scale: a
  component of y that varies by 1e-4 counts as much as one that varies by
  0.5 (`PredictionStatistics.spread` tells them apart). y's components sum
  to 1, so they are collinear; the minimum-norm solution serves (the
  prediction is the same for every solution). NaN where a feature or the
  target is not finite (a diverged estimate), where the fit has no more
  states than parameters, or fewer than 2 states are held out.
  """
  if not (np.all(np.isfinite(features)) and np.all(np.isfinite(target))):
    return float("nan")
  if fit.sum() <= features.shape[1] + 1 or (~fit).sum() < 2:
    return float("nan")
  x_mean, t_mean = features[fit].mean(axis=0), target[fit].mean()
  weights, *_ = np.linalg.lstsq(features[fit] - x_mean, target[fit] - t_mean,
                                rcond=None)
  prediction = (features[~fit] - x_mean) @ weights + t_mean
  test = target[~fit]
  total = np.sum((test - test.mean())**2)
  if total == 0:
    return float("nan")
  return float(1.0 - np.sum((prediction - test)**2) / total)


def prediction_statistics(y: np.ndarray, values: np.ndarray,
                          fit: np.ndarray) -> PredictionStatistics:
  """`PredictionStatistics` of y `[N, m]` (rows on the simplex) against
  `values` `[N]`, the regression fitted on the states `fit` `[N]` bool."""
  y = np.asarray(y, np.float64)
  values = np.asarray(values, np.float64)
  entropy = -np.sum(y * np.log(np.maximum(y, 1e-30)), axis=-1)
  spread = 0.5 * np.sum(np.abs(y - y.mean(axis=0)), axis=-1)
  r = correlations(y, values)
  best = int(np.argmax(np.abs(r)))
  return PredictionStatistics(
      entropy=float(entropy.mean()), spread=float(spread.mean()),
      best_abs_correlation=float(abs(r[best])), best_component=best,
      num_correlated_components=int(np.sum(np.abs(r) > CORRELATION_THRESHOLD)),
      held_out_r2=held_out_r2(y, values, fit))


def scalar_statistics(estimate: np.ndarray, values: np.ndarray,
                      fit: np.ndarray) -> ScalarStatistics:
  """`ScalarStatistics` of `estimate` `[N]` against `values` `[N]`."""
  features = np.asarray(estimate, np.float64)[:, None]
  values = np.asarray(values, np.float64)
  return ScalarStatistics(
      correlation=float(correlations(features, values)[0]),
      held_out_r2=held_out_r2(features, values, fit))
