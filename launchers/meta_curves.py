"""Plot a meta-training run's per-environment returns and validation score.

  python launchers/meta_curves.py --run=runs/pretrained --out=/tmp/meta.png

Writes the PNG and the plotted numbers as JSON next to it (/tmp/meta.json).
"""

# pylint: disable=g-bad-import-order
from lpg_tf.experiments import cli  # Before TensorFlow loads: quiets it.
from absl import app
from absl import flags

from lpg_tf import errors
from lpg_tf.experiments import meta_curves
# pylint: enable=g-bad-import-order

_RUN = flags.DEFINE_string("run", None, "A meta-training work directory.")
_OUT = flags.DEFINE_string("out", None, "The PNG to write (JSON goes next to it).")
_SMOOTHING = flags.DEFINE_float(
    "smoothing", meta_curves.DEFAULT_SMOOTHING,
    "Weight of the returns' exponential moving average, in [0, 1).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    meta_curves.plot_meta_training(_RUN.value, _OUT.value, _SMOOTHING.value)
  except errors.ConfigError as error:
    raise app.UsageError(str(error)) from error


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
