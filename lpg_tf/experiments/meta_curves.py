"""Plot a meta-training run's curves: the library side of
`launchers/meta_curves.py`.

Reads the run's TensorBoard summaries (`DIR/tb`, written by `meta_train`),
draws each environment's return over meta-steps and the validation score
(`analysis.meta_curves`) to a PNG, and writes the same numbers as JSON next to
it (`curves.png` -> `curves.json`). Bad input raises `errors.ConfigError`
before anything is written.
"""

import glob
import json
import os

from absl import logging

from lpg_tf import errors
from lpg_tf.analysis import meta_curves as meta_curves_lib
from lpg_tf.experiments import meta_train

DEFAULT_SMOOTHING = meta_curves_lib.DEFAULT_SMOOTHING


def plot_meta_training(run: str, out: str,
                       smoothing: float = DEFAULT_SMOOTHING) -> str:
  """Writes `out` (PNG) and its JSON twin for the meta-training run `run`.

  Returns:
    The JSON's path.

  Raises:
    ConfigError: `run` has no summaries, `out` is not a .png path in an
      existing directory, or `smoothing` is outside [0, 1).
  """
  tb_dir = os.path.join(run or "", meta_train.TB_DIR)
  if not glob.glob(os.path.join(tb_dir, "events.out.tfevents.*")):
    raise errors.ConfigError(
        f"--run {run!r} holds no TensorBoard summaries ({tb_dir}): give a "
        "meta-training work directory")
  if not out or not out.endswith(".png"):
    raise errors.ConfigError(f"--out must be a .png path, got {out!r}")
  if not os.path.isdir(os.path.dirname(os.path.abspath(out))):
    raise errors.ConfigError(f"--out {out!r}: its directory does not exist")
  if not 0 <= smoothing < 1:
    raise errors.ConfigError(f"--smoothing must be in [0, 1), got {smoothing}")
  curves = meta_curves_lib.meta_curves(meta_curves_lib.read_scalars(tb_dir),
                                       smoothing)
  if not curves.returns and not curves.scores:
    raise errors.ConfigError(
        f"{tb_dir} holds no episode returns or validation scores yet")
  meta_curves_lib.plot(curves, out, f"Meta-training: {os.path.abspath(run)}")
  json_path = out[:-len(".png")] + ".json"
  with open(json_path, "w") as f:
    json.dump(meta_curves_lib.to_json(curves), f, indent=1)
  logging.info("Meta-training curves of %d groups in %s and %s",
               len(curves.returns), out, json_path)
  return json_path
