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
The format itself (signature, metadata) and its reader, `SavedModelRule`, are in
`lpg_tf.rules.saved_model`: this module writes what that one reads.
"""

import json
import os
import shutil
import tempfile

import sonnet as snt
import tensorflow as tf

from lpg_tf import errors
from lpg_tf import types
from lpg_tf.rules import lpg
from lpg_tf.rules import saved_model


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
                        signatures={saved_model.SIGNATURE_KEY: module.serve})
    metadata = saved_model.RuleMetadata(rule.hidden_size, rule.prediction_size,
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


def load_rule_into(rule: lpg.LPG, path: str) -> None:
  """Restores the weights of the rule exported at `path` into `rule`.

  `rule` must have the exported hidden_size, prediction_size and
  embedding_sizes; `use_baseline` may differ, since it changes the agent's loss
  and not the network (Appendix B.2 meta-tests a rule with a baseline added).

  Raises:
    errors.ConfigError: `path` is not an lpg_tf rule export, its signature is
      not the rule's, or its sizes differ from `rule`'s.
  """
  metadata = saved_model.read_metadata(path)
  mismatched = [
      f"{field} {getattr(metadata, field)} (export) != "
      f"{getattr(rule, field)} (rule)"
      for field in ("hidden_size", "prediction_size", "embedding_sizes")
      if getattr(metadata, field) != getattr(rule, field)
  ]
  if mismatched:
    raise errors.ConfigError(
        f"Cannot load the rule exported at {path!r}: " + "; ".join(mismatched))
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


