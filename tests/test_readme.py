"""The README's Python snippets run as written, against a real exported rule."""

import os
import re
import subprocess
import sys

from absl.testing import absltest
import numpy as np
import tensorflow as tf

from lpg_tf import export
from lpg_tf.rules import lpg

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "README.md")


def python_blocks():
  with open(README, encoding="utf-8") as f:
    return re.findall(r"```python\n(.*?)```", f.read(), re.S)


def rule_snippets():
  return [b for b in python_blocks() if "runs/cpu/rule" in b]


class ReadmeTest(absltest.TestCase):

  def test_rule_snippets_run(self):
    snippets = rule_snippets()
    self.assertLen(snippets, 3)
    rule_dir = os.path.join(self.create_tempdir().full_path, "rule")
    export.export_rule(lpg.LPG(hidden_size=8, prediction_size=30), rule_dir)
    for snippet in snippets:
      snippet = snippet.replace("runs/cpu/rule", rule_dir)
      namespace = {}
      exec(snippet, namespace)  # pylint: disable=exec-used
      if "w_pi" in namespace:
        self.assertTrue(bool(tf.reduce_all(tf.math.is_finite(namespace["w_pi"]))))
        self.assertTrue(bool(tf.reduce_all(tf.math.is_finite(namespace["w_y"]))))
      elif "onnxruntime" in namespace:
        self.assertEqual(namespace["pi_hat"].shape, (20, 4))
        np.testing.assert_allclose(namespace["y_hat"].sum(-1), 1.0, rtol=1e-5)
        self.assert_runs_without_tensorflow(snippet)
      else:
        self.assertEqual(tuple(namespace["out"]["y_hat"].shape), (3, 2, 30))

  def test_pretrained_rule_snippet_runs(self):
    snippets = [b for b in python_blocks() if "rules import pretrained" in b]
    self.assertLen(snippets, 1)
    namespace = {}
    exec(snippets[0], namespace)  # pylint: disable=exec-used
    self.assertTrue(os.path.isfile(os.path.join(namespace["directory"],
                                                "rule.onnx")))
    self.assertIn("Model card", namespace["card"])

  def assert_runs_without_tensorflow(self, snippet):
    check = "\nimport sys\nassert 'tensorflow' not in sys.modules, 'tensorflow'\n"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", snippet + check],
                            cwd=self.create_tempdir().full_path, env=env,
                            capture_output=True, text=True, timeout=120,
                            check=False)
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    self.assertIn("(20, 4) (20, 4, 30)", result.stdout)

  def test_links_stay_inside_the_repository(self):
    root = os.path.dirname(README)
    with open(README, encoding="utf-8") as f:
      text = f.read()
    self.assertNotIn("../", text)
    for target in re.findall(r"\]\(([^)#:]+)\)", text):
      self.assertTrue(os.path.exists(os.path.join(root, target)), target)


if __name__ == "__main__":
  absltest.main()
