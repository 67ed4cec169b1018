"""lpg_tf/analysis/comparison_table.py: verdicts, the target's counts and the
markdown table, on a hand-made record."""

from absl.testing import absltest

from lpg_tf.analysis import comparison_table


def rule(mean, chosen=(40.0, 0.5), stderr=0.1):
  return {"mean": mean, "stderr": stderr, "chosen": list(chosen)}


def results():
  """Rule "lpg" vs A2C: >= on dense (tie) and sparse, < on chain/short; >
  random on breakout only; chain/long has no A2C mean."""
  return {
      "settings": {"rules": ["lpg", "a2c"], "seeds": 5, "tuning_seeds": 2},
      "envs": {
          "tabular/dense": {"steps": 300_000, "random_return": 1.0,
                            "rules": {"lpg": rule(10.0), "a2c": rule(10.0)}},
          "tabular/sparse": {"steps": 300_000, "random_return": 0.0,
                             "rules": {"lpg": rule(0.5), "a2c": rule(0.2)}},
          "chain/short": {"steps": 100_000, "random_return": 0.0,
                          "rules": {"lpg": rule(0.1), "a2c": rule(0.9)}},
          "chain/long": {"steps": 100_000, "random_return": 0.0,
                         "rules": {"lpg": rule(0.3), "a2c": rule(None)}},
          "minatar/breakout": {"steps": 500_000, "random_return": 0.5,
                               "rules": {"lpg": rule(2.0), "a2c": rule(4.0)}},
          "minatar/freeway": {"steps": 500_000, "random_return": None,
                              "rules": {"lpg": rule(0.0), "a2c": rule(5.0)}},
      }}


class ComparisonTableTest(absltest.TestCase):

  def test_verdicts(self):
    record = results()
    self.assertEqual(comparison_table.verdicts(record, "lpg", "tabular/dense"),
                     (True, True))
    self.assertEqual(comparison_table.verdicts(record, "lpg", "chain/short"),
                     (False, True))
    self.assertEqual(comparison_table.verdicts(record, "lpg", "chain/long"),
                     (None, True))
    self.assertEqual(comparison_table.verdicts(record, "lpg",
                                               "minatar/freeway"),
                     (False, None))

  def test_target_counts(self):
    counts = comparison_table.target_counts(results())["lpg"]
    self.assertEqual(counts["at_least_a2c_tabular_chain"], [2, 4])
    self.assertEqual(counts["beats_random_minatar"], [1, 2])

  def test_pairwise(self):
    table = comparison_table.pairwise(results())
    self.assertEqual(table["lpg"]["a2c"], [2, 5])
    self.assertEqual(table["a2c"]["lpg"], [4, 5])

  def test_markdown(self):
    text = comparison_table.markdown(results())
    self.assertIn("| environment | steps | random | lpg (α) | a2c (α) | "
                  "lpg ≥ A2C? | lpg > random? |", text)
    self.assertIn("| tabular/sparse | 300,000 | 0 | 0.5 ± 0.1 (α_lr 40, α_y "
                  "0.5) | 0.2 ± 0.1 (α_lr 40) | yes | yes |", text)
    self.assertIn("| chain/long | 100,000 | 0 | 0.3 ± 0.1 (α_lr 40, α_y 0.5) "
                  "| – (α_lr 40) | – | yes |", text)
    self.assertIn("lpg ≥ A2C on 2 of the 4 tabular+chain", text)
    self.assertIn("lpg > random on 1 of 2 MinAtar games", text)
    self.assertIn("| lpg | – | 2 of 5 |", text)


if __name__ == "__main__":
  absltest.main()
