"""SavedModel export and loading of an LPG rule (DESIGN.md idiom 7).

An exported rule is a plain `tf.Module` (no Sonnet) holding copies of the rule's
variables and one `serving_default` signature, time-major with T and B free:

  inputs   reward, discount, gamma, pi_a   [T, B]     (discount 0 when terminal)
           y, y_next                       [T, B, m]  (y(s_t), y(s_{t+1}))
  outputs  pi_hat [T, B], y_hat [T, B, m]

all float32. It loads and runs in a process that imports neither Sonnet nor
lpg_tf, and with `saved_model_cli run`. The rule's configuration sits next to
the graph in `assets.extra/lpg_tf_rule.json`, so `load_rule_into` can check
that an LPG module has the exported shapes before restoring its weights.
"""

import json
import os
import shutil
import tempfile
from typing import Any, NamedTuple, Optional

import sonnet as snt
import tensorflow as tf

from lpg_tf import errors
from lpg_tf import types
from lpg_tf.learning import agent_update
from lpg_tf.rules import base
from lpg_tf.rules import lpg

FORMAT = "lpg_tf.rules.lpg.LPG"
FORMAT_VERSION = 1
METADATA_PATH = os.path.join("assets.extra", "lpg_tf_rule.json")
SIGNATURE_KEY = "serving_default"
SCALAR_INPUTS = ("reward", "discount", "gamma", "pi_a")  # [T, B]
VECTOR_INPUTS = ("y", "y_next")  # [T, B, m]
OUTPUT_RANKS = {"pi_hat": 2, "y_hat": 3}


class RuleMetadata(NamedTuple):
  """The configuration an exported rule was built with."""
  hidden_size: int
  prediction_size: int
  embedding_sizes: tuple[int, ...]
  use_baseline: bool


def export_rule(rule: lpg.LPG, path: str) -> None:
  """Writes `rule` as a SavedModel directory at `path`, atomically.

  The SavedModel is written to a temporary directory next to `path` and renamed
  into place, so `path` never holds a half-written rule; an existing export at
  `path` is replaced.

  Args:
    rule: the LPG module; built here if it has not been called yet.
    path: the SavedModel directory to write (local filesystem).
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
                        signatures={SIGNATURE_KEY: module.serve})
    metadata = RuleMetadata(rule.hidden_size, rule.prediction_size,
                            rule.embedding_sizes, rule.use_baseline)
    _write_metadata(staging, metadata)
    _replace_directory(staging, path)
  finally:
    shutil.rmtree(staging, ignore_errors=True)


def _directory_mode() -> int:
  """The mode os.makedirs would give a new directory: 0777 less the umask."""
  umask = os.umask(0)
  os.umask(umask)
  return 0o777 & ~umask


def read_metadata(path: str) -> RuleMetadata:
  """The configuration of the rule exported at `path`; ConfigError if none."""
  metadata_file = os.path.join(path, METADATA_PATH)
  try:
    with open(metadata_file) as f:
      content = json.load(f)
  except (OSError, ValueError) as e:
    raise errors.ConfigError(
        f"{path!r} is not an lpg_tf rule export: cannot read "
        f"{METADATA_PATH} ({e}).") from e
  if content.get("format") != FORMAT:
    raise errors.ConfigError(
        f"{path!r} is not an lpg_tf rule export: {METADATA_PATH} has format "
        f"{content.get('format')!r}, expected {FORMAT!r}.")
  if content.get("format_version") != FORMAT_VERSION:
    raise errors.ConfigError(
        f"{path!r} has lpg_tf rule format version "
        f"{content.get('format_version')!r}; this lpg_tf reads version "
        f"{FORMAT_VERSION}.")
  try:
    return RuleMetadata(
        hidden_size=int(content["hidden_size"]),
        prediction_size=int(content["prediction_size"]),
        embedding_sizes=tuple(int(s) for s in content["embedding_sizes"]),
        use_baseline=bool(content["use_baseline"]))
  except (KeyError, TypeError, ValueError) as e:
    raise errors.ConfigError(
        f"{path!r}: malformed {METADATA_PATH} ({e!r}).") from e


def load_rule_into(rule: lpg.LPG, path: str) -> None:
  """Restores the weights of the rule exported at `path` into `rule`.

  `rule` must have the exported hidden_size, prediction_size and
  embedding_sizes; `use_baseline` may differ, since it changes the agent's loss
  and not the network (Appendix B.2 meta-tests a rule with a baseline added).

  Raises:
    errors.ConfigError: `path` is not an lpg_tf rule export, its signature is
      not the rule's, or its sizes differ from `rule`'s.
  """
  metadata = read_metadata(path)
  mismatched = [
      f"{field} {getattr(metadata, field)} (export) != "
      f"{getattr(rule, field)} (rule)"
      for field in ("hidden_size", "prediction_size", "embedding_sizes")
      if getattr(metadata, field) != getattr(rule, field)
  ]
  if mismatched:
    raise errors.ConfigError(
        f"Cannot load the rule exported at {path!r}: " + "; ".join(mismatched))
  loaded = _load(path)
  m = _check_signature(path, loaded.signatures[SIGNATURE_KEY])
  if m != metadata.prediction_size or not hasattr(loaded, "weights"):
    raise errors.ConfigError(
        f"The SavedModel at {path!r} does not match its {METADATA_PATH}: it "
        "was not written by export_rule.")
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


class SavedModelRule(base.UpdateRule):
  """An exported rule as an update rule, for meta-testing it (Section 4)."""

  def __init__(self, path: str, use_baseline: Optional[bool] = None):
    """Loads the export at `path` and checks its signature.

    Only the `serving_default` signature is required of the SavedModel; the
    export's metadata is read only when `use_baseline` is None.

    Args:
      path: a SavedModel directory with the signature of `export_rule`'s.
      use_baseline: the Eq. 7 baseline (Appendix B.2); None keeps the export's.

    Raises:
      errors.ConfigError: `path` is not a SavedModel with the rule's signature,
        or `use_baseline` is None and `path` has no lpg_tf metadata.
    """
    self._loaded = _load(path)
    self._serve = self._loaded.signatures[SIGNATURE_KEY]
    self._prediction_size = _check_signature(path, self._serve)
    if use_baseline is None:
      use_baseline = read_metadata(path).use_baseline
    self._use_baseline = use_baseline
    if self._use_baseline:
      self._loss_config = agent_update.LossConfig(subtract_baseline=True,
                                                  baseline_cost=1.0)
    else:
      self._loss_config = agent_update.LossConfig()

  @property
  def prediction_size(self) -> int:
    return self._prediction_size

  @property
  def loss_config(self) -> agent_update.LossConfig:
    return self._loss_config

  def __call__(self, inputs: types.RuleInputs) -> types.RuleOutput:
    """The exported rule's targets; see `lpg.LPG.__call__`."""
    m = inputs.y.shape[-1]
    if m != self._prediction_size:
      raise errors.ConfigError(
          f"The exported rule reads m = {self._prediction_size} predictions, "
          f"the agent has m = {m}.")
    outputs = self._serve(
        **{name: getattr(inputs, name)
           for name in SCALAR_INPUTS + VECTOR_INPUTS})
    # The signature leaves T and B unknown; the outputs are shaped like the
    # inputs, and static shapes keep the caller's reshapes (and XLA) simple.
    pi_hat = tf.ensure_shape(outputs["pi_hat"], inputs.reward.shape)
    y_hat = tf.ensure_shape(outputs["y_hat"], inputs.y.shape)
    return types.RuleOutput(
        pi_hat=pi_hat, y_hat=y_hat,
        baseline_target=pi_hat if self._use_baseline else None)


class _ExportedRule(tf.Module):
  """What is saved: copies of the rule's variables and the serving function."""

  def __init__(self, rule: lpg.LPG):
    super().__init__(name="exported_lpg")
    self.weights = {
        _variable_key(rule, v): tf.Variable(v, trainable=False)
        for v in rule.variables
    }
    copies = {v.ref(): self.weights[_variable_key(rule, v)]
              for v in rule.variables}
    scalar = tf.TensorSpec([None, None], tf.float32)
    vector = tf.TensorSpec([None, None, rule.prediction_size], tf.float32)

    @tf.function(input_signature=[scalar] * 4 + [vector] * 2)
    def serve(reward, discount, gamma, pi_a, y, y_next):
      inputs = types.RuleInputs(reward=reward, discount=discount, gamma=gamma,
                                pi_a=pi_a, y=y, y_next=y_next, baseline=None)
      with snt.custom_variable_getter(lambda v: copies[v.ref()]):
        outputs = rule(inputs)
      return {"pi_hat": outputs.pi_hat, "y_hat": outputs.y_hat}

    self.serve = serve


def _variable_key(rule: lpg.LPG, variable: tf.Variable) -> str:
  """`lstm/w_i` for `<rule scope>/lstm/w_i:0`, whatever the rule's name."""
  prefix = rule.name_scope.name
  name = variable.name
  if not name.startswith(prefix):
    raise ValueError(f"Variable {name} is not under the rule's scope {prefix}.")
  return name[len(prefix):].rsplit(":", 1)[0]


def _write_metadata(directory: str, metadata: RuleMetadata) -> None:
  content = {"format": FORMAT, "format_version": FORMAT_VERSION,
             **metadata._asdict()}
  metadata_file = os.path.join(directory, METADATA_PATH)
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


def _load(path: str) -> Any:
  """tf.saved_model.load; ConfigError for a missing or broken SavedModel."""
  try:
    loaded = tf.saved_model.load(path)
  except (OSError, ValueError, RuntimeError, tf.errors.OpError) as e:
    raise errors.ConfigError(
        f"Cannot load a SavedModel from {path!r}: {e}") from e
  if SIGNATURE_KEY not in loaded.signatures:
    raise errors.ConfigError(
        f"The SavedModel at {path!r} has no {SIGNATURE_KEY!r} signature "
        f"(it has {sorted(loaded.signatures)}).")
  return loaded


def _check_signature(path: str, signature: Any) -> int:
  """m of `signature`; ConfigError unless it is the module docstring's."""
  _, input_specs = signature.structured_input_signature
  y_shape = input_specs["y"].shape if "y" in input_specs else None
  m = y_shape[-1] if y_shape is not None and y_shape.rank == 3 else None
  expected_inputs = {
      **{name: tf.TensorSpec([None, None], tf.float32)
         for name in SCALAR_INPUTS},
      **{name: tf.TensorSpec([None, None, m], tf.float32)
         for name in VECTOR_INPUTS},
  }
  problems = []
  if m is None:
    problems.append("input y must be [T, B, m] with m known")
  if set(input_specs) != set(expected_inputs):
    problems.append(f"inputs {sorted(input_specs)}, expected "
                    f"{sorted(expected_inputs)}")
  else:
    for name, expected in expected_inputs.items():
      spec = input_specs[name]
      if (spec.dtype != expected.dtype or
          spec.shape.as_list() != expected.shape.as_list()):
        problems.append(f"input {name} is {spec.dtype.name}{spec.shape}, "
                        f"expected {expected.dtype.name}{expected.shape}")
  output_specs = signature.structured_outputs
  if set(output_specs) != set(OUTPUT_RANKS):
    problems.append(f"outputs {sorted(output_specs)}, expected "
                    f"{sorted(OUTPUT_RANKS)}")
  else:
    for name, rank in OUTPUT_RANKS.items():
      spec = output_specs[name]
      if spec.dtype != tf.float32 or spec.shape.rank != rank:
        problems.append(f"output {name} is {spec.dtype.name}{spec.shape}, "
                        f"expected float32 of rank {rank}")
  if problems:
    raise errors.ConfigError(
        f"The {SIGNATURE_KEY!r} signature of {path!r} is not an LPG rule's: "
        + "; ".join(problems) + ".")
  return m
