"""lpg_tf/analysis/value_horizons.py (Figure 5) and probe_grid.py: the true
values against a value iteration written here from Appendix A's rules, the
regression against known cases, and a tiny run end to end."""

from absl.testing import absltest
import numpy as np

from lpg_tf.analysis import probe_grid
from lpg_tf.analysis import value_horizons
from lpg_tf.rules import lpg

# The probe task's objects all end the episode when collected, so from a state
# with every object present the agent only ever sees such states: the values
# there are those of an 81-cell MDP with absorbing goals.
DIRECTIONS = [(k // 3 - 1, k % 3 - 1) for k in range(9)]  # (rows, columns)


def cell_values(instance, policy_of_cell, gamma, height=9, width=9,
                tolerance=1e-12):
  """V^pi of the all-present states by value iteration on cells, written from
  grid_world's rules (a move off the grid stays; the cell moved to is
  collected; every probe object ends the episode)."""
  rewards = {int(cell): reward for cell, reward in zip(
      instance, [o.reward for o in probe_grid.UNSEEN_GRID.objects
                 for _ in range(o.count)])}
  values = np.zeros(height * width)
  while True:
    updated = np.zeros_like(values)
    for cell in range(height * width):
      row, column = divmod(cell, width)
      for action, (dr, dc) in enumerate(DIRECTIONS):
        r, c = row + dr, column + dc
        target = r * width + c if 0 <= r < height and 0 <= c < width else cell
        if target in rewards:
          backup = rewards[target]
        else:
          backup = gamma * values[target]
        updated[cell] += policy_of_cell[cell, action] * backup
    if np.max(np.abs(updated - values)) < tolerance:
      return updated
    values = updated


class TrueValuesTest(absltest.TestCase):

  def test_policy_values_match_value_iteration_at_every_discount(self):
    env = probe_grid.make()
    instance = probe_grid.instances(env, 1, seed=0)[0]
    models, policies = value_horizons.near_optimal_policies(
        env, instance[None], value_horizons.GAMMA, 0.01)
    model = models[0]
    present = model.state_index(np.arange(model.num_cells),
                                2**model.num_objects - 1)
    values = value_horizons.true_values(models, policies,
                                        value_horizons.DISCOUNTS)
    for index, discount in enumerate(value_horizons.DISCOUNTS):
      expected = cell_values(instance, policies[0][present], discount)
      free = ~np.isin(np.arange(model.num_cells), instance)
      np.testing.assert_allclose(values[index, 0, present][free],
                                 expected[free], rtol=1e-8, atol=1e-10)

  def test_instances_are_distinct_and_seeded(self):
    env = probe_grid.make()
    drawn = probe_grid.instances(env, 50, seed=4)
    self.assertLen(np.unique(drawn, axis=0), 50)
    np.testing.assert_array_equal(drawn, probe_grid.instances(env, 50, 4))
    self.assertFalse(np.array_equal(drawn, probe_grid.instances(env, 50, 5)))


class RegressionTest(absltest.TestCase):

  def test_fits_known_functions_on_held_out_samples(self):
    """Row 0's input carries both targets (a linear one and |x_0|), row 1's is
    noise: g recovers the first on fresh samples, nothing beats the mean with
    the second."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3000, 3))
    x[1] = rng.normal(size=(3000, 3))
    targets = np.stack([x[0] @ np.array([1.0, -2.0, 0.5]), np.abs(x[0, :, 0])])
    mlps = value_horizons.fit_mlps(x[:, :2000], targets[:, :2000], steps=1500,
                                   seed=1)
    errors = np.square(value_horizons.predict(mlps, x[:, 2000:])
                       - targets[None, :, 2000:]).mean(-1)  # [R, D]
    variance = targets[:, 2000:].var(-1)
    np.testing.assert_array_less(errors[0], 0.02 * variance)
    np.testing.assert_array_less(0.9 * variance, errors[1])

  def test_held_out_mse_averages_instances_first(self):
    predictions = np.array([[[1.0, 1.0, 1.0, 3.0]]])
    targets = np.zeros([1, 4])
    # Instance 0 (three samples): 1; instance 1 (one sample): 9.
    np.testing.assert_allclose(value_horizons.held_out_mse(
        predictions, targets, np.array([0, 0, 0, 1])), [[5.0]])


class ValueHorizonsTest(absltest.TestCase):

  def test_tiny_run_end_to_end(self):
    """A random LPG, 4 training and 2 held-out instances, 4 updates: every
    curve is finite, and the known case holds: h from the exact V_0.995 to
    V_0.995 is (nearly) exact, far below predicting the mean."""
    env = probe_grid.make()
    drawn = probe_grid.instances(env, 6, seed=0)
    rule = lpg.LPG(hidden_size=8, prediction_size=6)
    rule.build()
    result = value_horizons.value_horizons(
        rule, env, drawn[:4], drawn[4:], num_updates=4, record_every=2,
        learning_rate=20.0, kl_cost=0.5, num_envs=4, unroll_length=5,
        min_visits=1, fit_steps=300, jit_compile=False)
    self.assertEqual(result.recorded_updates, (0, 2, 4))
    self.assertEqual(result.discounts, value_horizons.DISCOUNTS)
    self.assertEqual(np.shape(result.mse_y), (5, 3))
    self.assertTrue(np.all(np.isfinite(result.mse_y)))
    self.assertTrue(np.all(np.isfinite(result.mse_td)))
    self.assertLess(result.mse_exact_value[0], 0.05 * result.mse_mean[0])
    self.assertGreater(result.held_out_samples, 0)


if __name__ == "__main__":
  absltest.main()
