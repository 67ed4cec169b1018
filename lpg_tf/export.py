"""SavedModel export and loading of an LPG or LPG-V rule (DESIGN.md idiom 7).

An exported rule is a plain `tf.Module` (no Sonnet) holding copies of the rule's
variables and one `serving_default` signature, time-major with T and B free:

  inputs   reward, discount, gamma, pi_a   [T, B]     (discount 0 when terminal)
           y, y_next                       [T, B, m]  (y(s_t), y(s_{t+1}))
  outputs  pi_hat [T, B], y_hat [T, B, m]

all float32. It loads and runs in a process that imports neither Sonnet nor
lpg_tf, and with `saved_model_cli run`. The rule's configuration sits next to
the graph in `assets.extra/lpg_tf_rule.json`, so `load_rule_into` can check
that an LPG module has the exported shapes before restoring its weights.
The format itself (signature, metadata) and its reader, `SavedModelRule`, are in
`lpg_tf.rules.saved_model`: this module writes what that one reads.

The same function leaves TensorFlow as `rule.onnx` in the directory (tf2onnx,
opset `ONNX_OPSET`): inputs and outputs named as in the signature, T and B free,
for onnxruntime and plain numpy. It is converted from the rule's portable graph
(`lpg.LPG.__call__(portable=True)`: tf2onnx mistranslates the reverse scan of
the meta-trained graph) with the weights as inputs, once per architecture and
process, and each export binds its weights to it as constants. Before anything
is written, onnxruntime runs it on a trajectory with terminal steps and must
agree with the rule.
"""

import json
import os
import shutil
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper
import onnxruntime
import sonnet as snt
import tensorflow as tf
import tf2onnx

from lpg_tf import errors
from lpg_tf import types
from lpg_tf.rules import lpg
from lpg_tf.rules import saved_model

# tf2onnx 1.17's default opset; onnxruntime runs it from version 1.10 on.
ONNX_OPSET = 15
# rule.onnx and the SavedModel may differ by float32 rounding (~1e-7 here); a
# mistranslated graph is off by ~1e-1.
ONNX_CHECK_TOLERANCE = 1e-4
# The weight inputs of a converted graph before an export binds them.
_ONNX_WEIGHT_PREFIX = "eta/"
# Converted graphs (weights as inputs) by architecture and meaning of y (kind,
# y_softmax, td_lambda), filled by exports that passed their check: a
# conversion takes about 2 s of CPU, binding weights 0.1 s, and a
# meta-training run exports one architecture at every checkpoint.
_ONNX_GRAPHS: dict[tuple, onnx.ModelProto] = {}


class ExportError(RuntimeError):
  """The rule could not be exported; the previous export, if any, is intact."""


def export_rule(rule: lpg.LPG, path: str) -> None:
  """Writes `rule` as a SavedModel directory at `path`, atomically.

  The SavedModel and `rule.onnx` are written to a temporary directory next to
  `path` and renamed into place, so `path` never holds a half-written rule; an
  existing export at `path` is replaced.

  Args:
    rule: the LPG module; built here if it has not been called yet.
    path: the SavedModel directory to write (local filesystem).

  Raises:
    ExportError: tf2onnx cannot convert the rule, or onnxruntime cannot run
      the result or computes other targets than the rule; `path` is left as
      it was.
  """
  rule.build()
  path = os.path.abspath(path)
  parent, name = os.path.split(path)
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=parent)
  # mkdtemp makes it private (0700); the rule is for others to read and serve.
  os.chmod(staging, _directory_mode())
  try:
    module = _ExportedRule(rule)
    tf.saved_model.save(module, staging,
                        signatures={saved_model.SIGNATURE_KEY: module.serve})
    _write_onnx(rule, os.path.join(staging, saved_model.ONNX_PATH))
    metadata = saved_model.RuleMetadata(
        rule.hidden_size, rule.prediction_size, rule.embedding_sizes,
        rule.use_baseline, rule.kind, rule.y_softmax, rule.td_lambda)
    _write_metadata(staging, metadata)
    _replace_directory(staging, path)
  finally:
    shutil.rmtree(staging, ignore_errors=True)


def _directory_mode() -> int:
  """The mode os.makedirs would give a new directory: 0777 less the umask."""
  umask = os.umask(0)
  os.umask(umask)
  return 0o777 & ~umask


def load_rule_into(rule: lpg.LPG, path: str) -> None:
  """Restores the weights of the rule exported at `path` into `rule`.

  `rule` must have the exported kind, hidden_size, prediction_size,
  embedding_sizes and y_softmax; `use_baseline` may differ, since it changes
  the agent's loss and not the network (Appendix B.2 meta-tests a rule with a
  baseline added), and so may LPG-V's td_lambda, which has no weights.

  Raises:
    errors.ConfigError: `path` is not an lpg_tf rule export, its signature is
      not the rule's, or its sizes differ from `rule`'s.
  """
  metadata = check_sizes(rule, path)
  loaded = saved_model.load_saved_model(path)
  m = saved_model.check_signature(
      path, loaded.signatures[saved_model.SIGNATURE_KEY])
  if m != metadata.prediction_size or not hasattr(loaded, "weights"):
    raise errors.ConfigError(
        f"The SavedModel at {path!r} does not match its "
        f"{saved_model.METADATA_PATH}: it was not written by export_rule.")
  rule.build()
  saved = dict(loaded.weights)
  expected = {_variable_key(rule, v): v for v in rule.variables}
  if set(saved) != set(expected):
    raise errors.ConfigError(
        f"The rule exported at {path!r} has variables {sorted(saved)}, the "
        f"rule has {sorted(expected)}.")
  for key, variable in expected.items():
    if saved[key].shape != variable.shape:
      raise errors.ConfigError(
          f"Variable {key} of the rule exported at {path!r} has shape "
          f"{saved[key].shape}, the rule's has {variable.shape}.")
  for key, variable in expected.items():
    variable.assign(saved[key])


def check_sizes(rule: lpg.LPG, path: str) -> saved_model.RuleMetadata:
  """The metadata of the rule exported at `path`, whose kind, sizes
  (hidden_size, prediction_size, embedding_sizes) and y_softmax must be
  `rule`'s; `rule` need not be built.

  Raises:
    errors.ConfigError: `path` is not an lpg_tf rule export, or its kind,
      sizes or y_softmax differ from `rule`'s.
  """
  metadata = saved_model.read_metadata(path)
  mismatched = [
      f"{field} {getattr(metadata, field)} (export) != "
      f"{getattr(rule, field)} (rule)"
      for field in ("kind", "hidden_size", "prediction_size",
                    "embedding_sizes", "y_softmax")
      if getattr(metadata, field) != getattr(rule, field)
  ]
  if mismatched:
    raise errors.ConfigError(
        f"Cannot load the rule exported at {path!r}: " + "; ".join(mismatched))
  return metadata


class _ExportedRule(tf.Module):
  """What is saved: copies of the rule's variables and the serving function."""

  def __init__(self, rule: lpg.LPG):
    super().__init__(name="exported_lpg")
    self.weights = {
        _variable_key(rule, v): tf.Variable(v, trainable=False)
        for v in rule.variables
    }
    copies = [self.weights[_variable_key(rule, v)] for v in rule.variables]

    @tf.function(input_signature=_input_signature(rule.prediction_size))
    def serve(reward, discount, gamma, pi_a, y, y_next):
      return _targets(rule, copies, False, reward, discount, gamma, pi_a, y,
                      y_next)

    self.serve = serve


def _input_signature(prediction_size: int) -> list[tf.TensorSpec]:
  """The signature's inputs, in `types.RuleInputs` order."""
  scalar = tf.TensorSpec([None, None], tf.float32)
  vector = tf.TensorSpec([None, None, prediction_size], tf.float32)
  return [scalar] * 4 + [vector] * 2


def _targets(rule: lpg.LPG, weights: list, portable: bool, reward: tf.Tensor,
             discount: tf.Tensor, gamma: tf.Tensor, pi_a: tf.Tensor,
             y: tf.Tensor, y_next: tf.Tensor) -> dict[str, tf.Tensor]:
  """The signature's outputs, `rule` computed with `weights` for its variables
  (in `rule.variables` order); `portable` as in `lpg.LPG.__call__`."""
  by_variable = {v.ref(): w for v, w in zip(rule.variables, weights)}
  inputs = types.RuleInputs(reward=reward, discount=discount, gamma=gamma,
                            pi_a=pi_a, y=y, y_next=y_next, baseline=None)
  with snt.custom_variable_getter(lambda v: by_variable[v.ref()]):
    outputs = rule(inputs, portable=portable)
  return {"pi_hat": outputs.pi_hat, "y_hat": outputs.y_hat}


def _write_onnx(rule: lpg.LPG, onnx_file: str) -> None:
  """Writes the rule as an ONNX graph, once onnxruntime agrees with the rule."""
  # The graph is a function of the architecture and of what y means.
  key = (rule.kind, rule.y_softmax, rule.td_lambda, rule.prediction_size,
         tuple((_variable_key(rule, v), tuple(v.shape), v.dtype.name)
               for v in rule.variables))
  graph = _ONNX_GRAPHS[key] if key in _ONNX_GRAPHS else _convert_to_onnx(rule)
  weights = [v.numpy() for v in rule.variables]
  model = onnx.ModelProto()
  model.CopyFrom(graph)
  weight_names = {_ONNX_WEIGHT_PREFIX + _variable_key(rule, v)
                  for v in rule.variables}
  inputs = [i for i in model.graph.input if i.name not in weight_names]
  del model.graph.input[:]
  model.graph.input.extend(inputs)
  model.graph.initializer.extend(
      numpy_helper.from_array(w, _ONNX_WEIGHT_PREFIX + _variable_key(rule, v))
      for v, w in zip(rule.variables, weights))
  content = model.SerializeToString()
  _check_onnx(content, rule, weights)
  _ONNX_GRAPHS[key] = graph
  with open(onnx_file, "wb") as f:
    f.write(content)


def _convert_to_onnx(rule: lpg.LPG) -> onnx.ModelProto:
  """The rule's portable graph in ONNX with its weights as inputs
  (`_ONNX_WEIGHT_PREFIX` + variable key), the first two axes named T and B."""
  weight_specs = [
      tf.TensorSpec(v.shape, v.dtype,
                    name=_ONNX_WEIGHT_PREFIX + _variable_key(rule, v))
      for v in rule.variables]

  @tf.function(
      input_signature=_input_signature(rule.prediction_size) + [weight_specs])
  def targets(reward, discount, gamma, pi_a, y, y_next, weights):
    return _targets(rule, weights, True, reward, discount, gamma, pi_a, y,
                    y_next)

  try:
    graph, _ = tf2onnx.convert.from_function(
        targets, input_signature=targets.input_signature, opset=ONNX_OPSET)
  except Exception as e:  # pylint: disable=broad-except
    # tf2onnx raises whatever its op handlers raise.
    raise ExportError(
        f"tf2onnx {tf2onnx.__version__} cannot convert the rule to ONNX opset "
        f"{ONNX_OPSET}: {type(e).__name__}: {e}") from e
  for value in list(graph.graph.input) + list(graph.graph.output):
    if not value.name.startswith(_ONNX_WEIGHT_PREFIX):
      for dim, name in zip(value.type.tensor_type.shape.dim, ("T", "B")):
        dim.dim_param = name
  return graph


def _check_onnx(content: bytes, rule: lpg.LPG, weights: list) -> None:
  """ExportError unless onnxruntime runs `content` as `rule` with `weights`.

  Both run on one trajectory (T = 4, B = 3) with terminal steps, so that a
  graph whose backward LSTM runs the wrong way or ignores resets is caught.
  """
  rng = np.random.default_rng(0)
  t, b, m = 4, 3, rule.prediction_size
  discount = np.ones([t, b], np.float32)
  discount[1, 0] = discount[2, 2] = 0.0
  inputs = dict(
      reward=rng.normal(size=(t, b)).astype(np.float32), discount=discount,
      gamma=np.full([t, b], 0.99, np.float32),
      pi_a=rng.uniform(0.1, 1.0, size=(t, b)).astype(np.float32),
      y=rng.dirichlet(np.ones(m), size=(t, b)).astype(np.float32),
      y_next=rng.dirichlet(np.ones(m), size=(t, b)).astype(np.float32))
  expected = _targets(rule, [tf.constant(w) for w in weights], False,
                      **{k: tf.constant(v) for k, v in inputs.items()})
  try:
    session = onnxruntime.InferenceSession(
        content, providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    got = dict(zip(names, session.run(names, inputs)))
  except Exception as e:  # pylint: disable=broad-except
    # onnxruntime raises its own exception types, not exported by name.
    raise ExportError(
        f"onnxruntime {onnxruntime.__version__} cannot run the rule's ONNX "
        f"graph: {type(e).__name__}: {e}") from e
  if set(got) != set(expected):
    raise ExportError(f"The rule's ONNX graph has outputs {sorted(got)}, the "
                      f"rule {sorted(expected)}.")
  for name, value in expected.items():
    error = float(np.max(np.abs(got[name] - value.numpy())))
    if not error <= ONNX_CHECK_TOLERANCE:
      raise ExportError(
          f"The rule's ONNX graph gives other {name} than the rule (max "
          f"difference {error:.3g} > {ONNX_CHECK_TOLERANCE}): tf2onnx "
          f"{tf2onnx.__version__} mistranslated it.")


def _variable_key(rule: lpg.LPG, variable: tf.Variable) -> str:
  """`lstm/w_i` for `<rule scope>/lstm/w_i:0`, whatever the rule's name."""
  prefix = rule.name_scope.name
  name = variable.name
  if not name.startswith(prefix):
    raise ValueError(f"Variable {name} is not under the rule's scope {prefix}.")
  return name[len(prefix):].rsplit(":", 1)[0]


def _write_metadata(directory: str, metadata: saved_model.RuleMetadata) -> None:
  content = {"format": saved_model.FORMAT,
             "format_version": saved_model.FORMAT_VERSION,
             **metadata._asdict()}
  metadata_file = os.path.join(directory, saved_model.METADATA_PATH)
  os.makedirs(os.path.dirname(metadata_file), exist_ok=True)
  with open(metadata_file, "w") as f:
    json.dump(content, f, indent=2, sort_keys=True)


def _replace_directory(source: str, target: str) -> None:
  """Renames `source` to `target`, moving an existing `target` aside first.

  Each rename is atomic; between them `target` is briefly absent, never partial.
  """
  if not os.path.exists(target):
    os.rename(source, target)
    return
  parent, name = os.path.split(target)
  old = tempfile.mkdtemp(prefix=f".{name}.old-", dir=parent)
  previous = os.path.join(old, name)
  os.rename(target, previous)
  try:
    os.rename(source, target)
  except OSError:
    os.rename(previous, target)
    raise
  finally:
    shutil.rmtree(old, ignore_errors=True)


