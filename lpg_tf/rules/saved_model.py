"""A rule exported as a SavedModel, used as an update rule (DESIGN.md idiom 7).

The export format is the contract between `lpg_tf.export.export_rule`, which
writes it, and whoever reads it: a SavedModel whose `serving_default` signature
is time-major with T and B free,

  inputs   reward, discount, gamma, pi_a   [T, B]     (discount 0 when terminal)
           y, y_next                       [T, B, m]  (y(s_t), y(s_{t+1}))
  outputs  pi_hat [T, B], y_hat [T, B, m]

all float32, with the rule's configuration in `assets.extra/lpg_tf_rule.json`
(`RuleMetadata`) and, next to the SavedModel, the same function as an ONNX graph in `rule.onnx`
(same input and output names, T and B free) for onnxruntime without TensorFlow.
Nothing here reads `rule.onnx`: exports written before it existed load as ever.
The signature carries y_hat's probabilities, not its logits, so a loaded rule's
`RuleOutput.y_hat_logits` is None and the agent's KL uses a floored log of y_hat
(`rl_math.kl_divergence`); meta-testing does not differentiate through it.

What y means is the metadata's: `y_softmax` true, y and y_hat are on the
simplex and the agent's prediction term is the KL of Eq. 2; false (Section
4.4's "LPG w/o Softmax(y)"), both are in R^m and the term is the squared
error. An LPG-V rule (`kind` "lpg_v", `rules.lpg_v`) has m = 1, y = v the
agent's value, y_hat its TD(lambda) return (`td_lambda`), and y_softmax false.
Format version 1 (before these fields) reads as kind "lpg" with y_softmax true.
`SavedModelRule` is such an export behind the `UpdateRule` interface, so a
meta-learned rule is meta-tested exactly like A2C (Section 4.5). It lives here,
with the rules, because a loaded rule is a rule; `export.py` only writes.
"""

import json
import os
from typing import Any, NamedTuple, Optional

import tensorflow as tf

from lpg_tf import errors
from lpg_tf import types
from lpg_tf.rules import base

FORMAT = "lpg_tf.rules.lpg.LPG"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # 1: written before kind, y_softmax and td_lambda.
KINDS = ("lpg", "lpg_v")  # rules.lpg.KIND, rules.lpg_v.KIND
METADATA_PATH = os.path.join("assets.extra", "lpg_tf_rule.json")
SIGNATURE_KEY = "serving_default"
ONNX_PATH = "rule.onnx"
SCALAR_INPUTS = ("reward", "discount", "gamma", "pi_a")  # [T, B]
VECTOR_INPUTS = ("y", "y_next")  # [T, B, m]
OUTPUT_RANKS = {"pi_hat": 2, "y_hat": 3}


class RuleMetadata(NamedTuple):
  """The configuration an exported rule was built with.

  Attributes:
    hidden_size, prediction_size, embedding_sizes, use_baseline: the LPG
      module's (rules.lpg.LPG).
    kind: "lpg", or "lpg_v" (rules.lpg_v.LPGV: y is a value, m = 1).
    y_softmax: y is a softmax and the agent's prediction term a KL (Eq. 2);
      false: y in R^m and a squared error.
    td_lambda: LPG-V's lambda of the value's TD(lambda) target; None for LPG.
  """
  hidden_size: int
  prediction_size: int
  embedding_sizes: tuple[int, ...]
  use_baseline: bool
  kind: str = KINDS[0]
  y_softmax: bool = True
  td_lambda: Optional[float] = None


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
  if content.get("format_version") not in READABLE_VERSIONS:
    raise errors.ConfigError(
        f"{path!r} has lpg_tf rule format version "
        f"{content.get('format_version')!r}; this lpg_tf reads versions "
        f"{', '.join(map(str, READABLE_VERSIONS))}.")
  try:
    metadata = RuleMetadata(
        hidden_size=int(content["hidden_size"]),
        prediction_size=int(content["prediction_size"]),
        embedding_sizes=tuple(int(s) for s in content["embedding_sizes"]),
        use_baseline=bool(content["use_baseline"]))
    if content["format_version"] > 1:
      td_lambda = content["td_lambda"]
      metadata = metadata._replace(
          kind=str(content["kind"]), y_softmax=bool(content["y_softmax"]),
          td_lambda=None if td_lambda is None else float(td_lambda))
  except (KeyError, TypeError, ValueError) as e:
    raise errors.ConfigError(
        f"{path!r}: malformed {METADATA_PATH} ({e!r}).") from e
  if metadata.kind not in KINDS:
    raise errors.ConfigError(
        f"{path!r}: {METADATA_PATH} has kind {metadata.kind!r}; this lpg_tf "
        f"reads {', '.join(KINDS)}.")
  return metadata


def has_metadata(path: str) -> bool:
  """Whether `path` holds the metadata `read_metadata` reads."""
  return os.path.isfile(os.path.join(path, METADATA_PATH))


class SavedModelRule(base.UpdateRule):
  """An exported rule as an update rule, for meta-testing it (Section 4)."""

  def __init__(self, path: str, use_baseline: Optional[bool] = None):
    """Loads the export at `path` and checks its signature.

    Only the `serving_default` signature is required of the SavedModel when
    `use_baseline` is given; the export's metadata, if any, then still says
    what y means (without it: LPG's softmax y).

    Args:
      path: a SavedModel directory with the signature of `export_rule`'s.
      use_baseline: the Eq. 7 baseline (Appendix B.2); None keeps the export's.

    Raises:
      errors.ConfigError: `path` is not a SavedModel with the rule's signature,
        or `use_baseline` is None and `path` has no lpg_tf metadata.
    """
    self._loaded = load_saved_model(path)
    self._serve = self._loaded.signatures[SIGNATURE_KEY]
    self._prediction_size = check_signature(path, self._serve)
    metadata = (read_metadata(path)
                if use_baseline is None or has_metadata(path) else None)
    if use_baseline is None:
      use_baseline = metadata.use_baseline
    self._use_baseline = use_baseline
    self._loss_config = (base.EQ7_LOSS if self._use_baseline
                         else base.LossConfig())._replace(
                             y_softmax=metadata is None or metadata.y_softmax)

  @property
  def prediction_size(self) -> int:
    return self._prediction_size

  @property
  def loss_config(self) -> base.LossConfig:
    return self._loss_config

  def __call__(self, inputs: types.RuleInputs) -> types.RuleOutput:
    """The exported rule's targets; see `lpg.LPG.__call__` and
    `lpg_v.LPGV._targets`."""
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


def load_saved_model(path: str) -> Any:
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


def check_signature(path: str, signature: Any) -> int:
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
