"""Run length from a budget of environment steps (Appendix B.1: ~10^10 steps)."""

from absl.testing import absltest

from configs import cpu
from configs import paper
from lpg_tf import errors
from lpg_tf.experiments import meta_train
from lpg_tf.meta import run_length


class RunLengthTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.spec = meta_train.population_spec(paper.get_config())

  def test_paper_budget(self):
    # 960 lifetimes x 64 environments x 20 steps x (K + 1 = 6) rollouts.
    self.assertEqual(run_length.env_steps_per_meta_step(self.spec),
                     960 * 64 * 20 * 6)
    self.assertEqual(run_length.num_meta_steps(self.spec, None, 1e10), 1356)

  def test_paper_config_runs_about_1e10_steps(self):
    config = meta_train.with_run_length(paper.get_config())
    self.assertEqual(config.num_meta_steps, 1356)
    total = config.num_meta_steps * run_length.env_steps_per_meta_step(self.spec)
    self.assertBetween(total, 0.99e10, 1e10)

  def test_explicit_meta_steps(self):
    self.assertEqual(run_length.num_meta_steps(self.spec, 300, None), 300)
    self.assertEqual(meta_train.with_run_length(cpu.get_config()).num_meta_steps,
                     cpu.get_config().num_meta_steps)

  def test_exactly_one_of_the_two(self):
    for steps, budget in ((300, 1e10), (None, None), (0, None), (None, 1e6)):
      with self.subTest(steps=steps, budget=budget), \
          self.assertRaises(errors.ConfigError):
        run_length.num_meta_steps(self.spec, steps, budget)

  def test_random_grid_lifetimes_outlast_the_paper_run(self):
    unfinished = run_length.unfinished_lifetimes(self.spec, 1356)
    self.assertIn("random/dense", unfinished)
    self.assertNotIn("tabular/dense", unfinished)
    self.assertNotIn("chain/long", unfinished)


if __name__ == "__main__":
  absltest.main()
