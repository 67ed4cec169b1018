"""The LPG rule's SavedModel export: its public contract (DESIGN.md idiom 7)."""

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import onnxruntime
import tensorflow as tf
import tf2onnx

from lpg_tf import errors
from lpg_tf import export
from lpg_tf import types
from lpg_tf.rules import lpg
from lpg_tf.rules import saved_model

T, N, M, H = 5, 3, 4, 8
INPUT_NAMES = ("reward", "discount", "gamma", "pi_a", "y", "y_next")

# Runs in a fresh interpreter: loads the export with TensorFlow alone.
CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    rule_dir, inputs_file, outputs_file = sys.argv[1:]
    serve = tf.saved_model.load(rule_dir).signatures["serving_default"]
    inputs = np.load(inputs_file)
    outputs = serve(**{k: tf.constant(inputs[k]) for k in inputs.files})
    np.savez(outputs_file, **{k: v.numpy() for k, v in outputs.items()})
    leaked = [m for m in sys.modules if m.split(".")[0] in ("sonnet", "lpg_tf")]
    assert not leaked, leaked
""")


def make_inputs(seed=0, t=T, n=N, m=M):
  """Random numpy rule inputs by signature name, with one terminal step."""
  rng = np.random.default_rng(seed)
  y, y_next = (rng.dirichlet(np.ones(m), size=(t, n)).astype(np.float32)
               for _ in range(2))
  discount = np.ones((t, n), np.float32)
  discount[t // 2, 0] = 0.0
  return dict(reward=rng.normal(size=(t, n)).astype(np.float32),
              discount=discount, gamma=np.full((t, n), 0.95, np.float32),
              pi_a=rng.uniform(0.1, 1.0, size=(t, n)).astype(np.float32),
              y=y, y_next=y_next)


def with_terminals(inputs, seed=0, rate=0.3):
  """`inputs` with discount 0 at a random `rate` of its steps."""
  rng = np.random.default_rng(seed)
  shape = inputs["discount"].shape
  return dict(inputs, discount=(rng.uniform(size=shape) >= rate).astype(
      np.float32))


def rule_inputs(arrays):
  return types.RuleInputs(**{k: tf.constant(v) for k, v in arrays.items()},
                          baseline=None)


def save_unrelated_module(path, with_metadata_from=None):
  """A SavedModel with another signature, optionally with a rule's metadata."""
  module = tf.Module()
  module.v = tf.Variable(1.0)
  module.f = tf.function(lambda x: {"out": x * module.v},
                         input_signature=[tf.TensorSpec([None], tf.float32)])
  tf.saved_model.save(module, path, signatures={"serving_default": module.f})
  if with_metadata_from is not None:
    shutil.copytree(os.path.join(with_metadata_from, "assets.extra"),
                    os.path.join(path, "assets.extra"))


class ExportTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    tf.random.set_seed(1)
    cls.rule = lpg.LPG(hidden_size=H, prediction_size=M, name="my_lpg")
    cls.root = tempfile.mkdtemp()
    cls.path = os.path.join(cls.root, "rule")
    export.export_rule(cls.rule, cls.path)
    cls.inputs = make_inputs()
    cls.expected = cls.rule(rule_inputs(cls.inputs))

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root)
    super().tearDownClass()

  def assert_matches_rule(self, pi_hat, y_hat, expected=None):
    expected = expected or self.expected
    np.testing.assert_allclose(pi_hat, expected.pi_hat, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y_hat, expected.y_hat, rtol=1e-5, atol=1e-6)

  def test_signature(self):
    serve = tf.saved_model.load(self.path).signatures["serving_default"]
    _, specs = serve.structured_input_signature
    self.assertEqual(set(specs), set(INPUT_NAMES))
    for name in INPUT_NAMES:
      self.assertEqual(specs[name].dtype, tf.float32)
      want = [None, None, M] if name.startswith("y") else [None, None]
      self.assertEqual(specs[name].shape.as_list(), want, name)
    self.assertEqual(set(serve.structured_outputs), {"pi_hat", "y_hat"})

  def test_metadata(self):
    self.assertEqual(saved_model.read_metadata(self.path),
                     saved_model.RuleMetadata(hidden_size=H, prediction_size=M,
                                         embedding_sizes=(16, 1),
                                         use_baseline=False))

  def test_runs_in_a_fresh_process_without_sonnet_or_lpg_tf(self):
    inputs_file = os.path.join(self.root, "child_inputs.npz")
    outputs_file = os.path.join(self.root, "child_outputs.npz")
    np.savez(inputs_file, **self.inputs)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, self.path, inputs_file, outputs_file],
        cwd=self.root, env=env, capture_output=True, text=True, timeout=120,
        check=False)
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    outputs = np.load(outputs_file)
    self.assert_matches_rule(outputs["pi_hat"], outputs["y_hat"])

  def test_saved_model_cli_run(self):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    self.assertTrue(os.path.exists(cli), cli)
    inputs = make_inputs(seed=5, t=3, n=2)
    vectors_file = os.path.join(self.root, "cli_inputs.npz")
    np.savez(vectors_file, y=inputs["y"], y_next=inputs["y_next"])
    out_dir = os.path.join(self.root, "cli_outputs")
    # TF 2.15's --input_exprs takes Python literals only: the [T, B] inputs go
    # as nested lists, the [T, B, m] ones through --inputs from an .npz file.
    exprs = ";".join(f"{k}={inputs[k].tolist()!r}"
                     for k in ("reward", "discount", "gamma", "pi_a"))
    result = subprocess.run(
        [cli, "run", "--dir", self.path, "--tag_set", "serve",
         "--signature_def", "serving_default", "--input_exprs", exprs,
         "--inputs", f"y={vectors_file}[y];y_next={vectors_file}[y_next]",
         "--outdir", out_dir],
        capture_output=True, text=True, timeout=120, check=False)
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    self.assert_matches_rule(np.load(os.path.join(out_dir, "pi_hat.npy")),
                             np.load(os.path.join(out_dir, "y_hat.npy")),
                             self.rule(rule_inputs(inputs)))

  @parameterized.parameters(False, True)
  def test_load_rule_into_round_trip(self, use_baseline):
    tf.random.set_seed(2)
    fresh = lpg.LPG(hidden_size=H, prediction_size=M, use_baseline=use_baseline,
                    name="other_name")
    export.load_rule_into(fresh, self.path)
    out = fresh(rule_inputs(self.inputs))
    self.assert_matches_rule(out.pi_hat, out.y_hat)
    self.assertEqual(out.baseline_target is not None, use_baseline)

  def test_saved_model_rule_equals_rule(self):
    rule = saved_model.SavedModelRule(self.path)
    self.assertEqual(rule.loss_config, self.rule.loss_config)
    self.assertEqual(rule.prediction_size, M)
    out = rule(rule_inputs(self.inputs))
    self.assert_matches_rule(out.pi_hat, out.y_hat)
    self.assertIsNone(out.baseline_target)
    jitted = tf.function(rule, jit_compile=True)(rule_inputs(self.inputs))
    self.assert_matches_rule(jitted.pi_hat, jitted.y_hat)

  def test_saved_model_rule_with_baseline(self):
    rule = saved_model.SavedModelRule(self.path, use_baseline=True)
    self.assertEqual(rule.loss_config,
                     lpg.LPG(use_baseline=True).loss_config)
    out = rule(rule_inputs(self.inputs))
    np.testing.assert_array_equal(out.baseline_target, out.pi_hat)

  def test_export_replaces_and_a_failed_export_keeps_the_old_rule(self):
    root = self.create_tempdir().full_path
    path = os.path.join(root, "rule")
    export.export_rule(self.rule, path)
    other = lpg.LPG(hidden_size=H, prediction_size=M)
    export.export_rule(other, path)
    replaced = saved_model.SavedModelRule(path)(rule_inputs(self.inputs))
    self.assert_matches_rule(replaced.pi_hat, replaced.y_hat,
                             other(rule_inputs(self.inputs)))
    # The second export of an architecture reuses its converted graph.
    onnx_rule = onnxruntime.InferenceSession(
        os.path.join(path, saved_model.ONNX_PATH),
        providers=["CPUExecutionProvider"])
    self.assert_matches_rule(*onnx_rule.run(["pi_hat", "y_hat"], self.inputs),
                             other(rule_inputs(self.inputs)))
    with mock.patch.object(tf.saved_model, "save",
                           side_effect=RuntimeError("crash")):
      with self.assertRaisesRegex(RuntimeError, "crash"):
        export.export_rule(self.rule, path)
    self.assertEqual(os.listdir(root), ["rule"])
    kept = saved_model.SavedModelRule(path)(rule_inputs(self.inputs))
    self.assert_matches_rule(kept.pi_hat, kept.y_hat,
                             other(rule_inputs(self.inputs)))

  def test_export_is_readable_by_others(self):
    path = os.path.join(self.create_tempdir().full_path, "rule")
    umask = os.umask(0o022)
    try:
      export.export_rule(self.rule, path)
    finally:
      os.umask(umask)
    self.assertEqual(os.stat(path).st_mode & 0o777, 0o755)

  def test_onnx_equals_saved_model(self):
    session = onnxruntime.InferenceSession(
        os.path.join(self.path, saved_model.ONNX_PATH),
        providers=["CPUExecutionProvider"])
    serve = tf.saved_model.load(self.path).signatures["serving_default"]
    for t, n in ((5, 3), (12, 1), (1, 7), (30, 16)):
      with self.subTest(t=t, n=n):
        inputs = with_terminals(make_inputs(seed=t, t=t, n=n), seed=t)
        self.assertIn(0.0, inputs["discount"])
        expected = serve(**{k: tf.constant(v) for k, v in inputs.items()})
        pi_hat, y_hat = session.run(["pi_hat", "y_hat"], inputs)
        # Float32 rounding between two runtimes: ~1e-7 here.
        np.testing.assert_allclose(pi_hat, expected["pi_hat"], rtol=0,
                                   atol=1e-5)
        np.testing.assert_allclose(y_hat, expected["y_hat"], rtol=0, atol=1e-5)

  def test_onnx_names_and_free_axes(self):
    session = onnxruntime.InferenceSession(
        os.path.join(self.path, saved_model.ONNX_PATH),
        providers=["CPUExecutionProvider"])
    self.assertEqual(
        {(i.name, i.type, tuple(i.shape)) for i in session.get_inputs()},
        {(name, "tensor(float)",
          ("T", "B", M) if name.startswith("y") else ("T", "B"))
         for name in INPUT_NAMES})
    self.assertEqual(
        {(o.name, o.type, tuple(o.shape)) for o in session.get_outputs()},
        {("pi_hat", "tensor(float)", ("T", "B")),
         ("y_hat", "tensor(float)", ("T", "B", M))})

  def test_an_export_without_onnx_still_loads(self):
    older = os.path.join(self.create_tempdir().full_path, "rule")
    shutil.copytree(self.path, older)
    os.remove(os.path.join(older, saved_model.ONNX_PATH))
    out = saved_model.SavedModelRule(older)(rule_inputs(self.inputs))
    self.assert_matches_rule(out.pi_hat, out.y_hat)
    fresh = lpg.LPG(hidden_size=H, prediction_size=M)
    export.load_rule_into(fresh, older)
    out = fresh(rule_inputs(self.inputs))
    self.assert_matches_rule(out.pi_hat, out.y_hat)

  def assert_failed_onnx_export_keeps_the_old_rule(self, message):
    root = self.create_tempdir().full_path
    path = os.path.join(root, "rule")
    shutil.copytree(self.path, path)
    with open(os.path.join(path, saved_model.ONNX_PATH), "rb") as f:
      old_onnx = f.read()
    # An empty cache of converted graphs: as in a process's first export.
    with mock.patch.dict(export._ONNX_GRAPHS, clear=True):  # pylint: disable=protected-access
      with self.assertRaisesRegex(export.ExportError, message):
        export.export_rule(lpg.LPG(hidden_size=H, prediction_size=M), path)
    self.assertEqual(os.listdir(root), ["rule"])
    with open(os.path.join(path, saved_model.ONNX_PATH), "rb") as f:
      self.assertEqual(f.read(), old_onnx)
    kept = saved_model.SavedModelRule(path)(rule_inputs(self.inputs))
    self.assert_matches_rule(kept.pi_hat, kept.y_hat)

  def test_a_failed_onnx_conversion_keeps_the_old_rule(self):
    with mock.patch.object(tf2onnx.convert, "from_function",
                           side_effect=ValueError("op Foo is not supported")):
      self.assert_failed_onnx_export_keeps_the_old_rule(
          "tf2onnx .* cannot convert the rule to ONNX opset 15: ValueError: "
          "op Foo is not supported")

  def test_an_onnx_graph_with_other_targets_is_refused(self):
    convert = tf2onnx.convert.from_function

    def convert_another_function(function, input_signature, **kwargs):
      del function
      wrong = tf.function(
          lambda reward, discount, gamma, pi_a, y, y_next, weights: {
              "pi_hat": reward, "y_hat": y}, input_signature=input_signature)
      return convert(wrong, input_signature=input_signature, **kwargs)

    with mock.patch.object(tf2onnx.convert, "from_function",
                           convert_another_function):
      self.assert_failed_onnx_export_keeps_the_old_rule(
          "ONNX graph gives other pi_hat than the rule")

  def test_missing_directory(self):
    missing = os.path.join(self.root, "missing")
    with self.assertRaisesRegex(errors.ConfigError, "not an lpg_tf rule"):
      export.load_rule_into(lpg.LPG(hidden_size=H, prediction_size=M), missing)
    with self.assertRaisesRegex(errors.ConfigError, "Cannot load a SavedModel"):
      saved_model.SavedModelRule(missing)

  def test_unrelated_saved_model(self):
    plain = self.create_tempdir().full_path
    save_unrelated_module(plain)
    with self.assertRaisesRegex(errors.ConfigError, "not an lpg_tf rule"):
      export.load_rule_into(lpg.LPG(hidden_size=H, prediction_size=M), plain)
    with self.assertRaisesRegex(errors.ConfigError, "not an LPG rule's"):
      saved_model.SavedModelRule(plain, use_baseline=False)
    disguised = self.create_tempdir().full_path
    save_unrelated_module(disguised, with_metadata_from=self.path)
    with self.assertRaisesRegex(errors.ConfigError, "inputs \\['x'\\]"):
      export.load_rule_into(lpg.LPG(hidden_size=H, prediction_size=M),
                            disguised)
    with self.assertRaisesRegex(errors.ConfigError, "not an LPG rule's"):
      saved_model.SavedModelRule(disguised)

  @parameterized.named_parameters(
      ("prediction_size", dict(hidden_size=H, prediction_size=M + 1),
       "prediction_size 4 \\(export\\) != 5"),
      ("hidden_size", dict(hidden_size=H * 2, prediction_size=M),
       "hidden_size 8 \\(export\\) != 16"),
      ("embedding", dict(hidden_size=H, prediction_size=M,
                         embedding_sizes=(8, 1)), "embedding_sizes"))
  def test_mismatched_sizes(self, config, message):
    with self.assertRaisesRegex(errors.ConfigError, message):
      export.load_rule_into(lpg.LPG(**config), self.path)

  def test_saved_model_rule_rejects_other_prediction_size(self):
    rule = saved_model.SavedModelRule(self.path)
    with self.assertRaisesRegex(errors.ConfigError, "m = 4 .* m = 6"):
      rule(rule_inputs(make_inputs(m=M + 2)))


if __name__ == "__main__":
  absltest.main()
