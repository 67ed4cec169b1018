"""Plot and tabulate a comparison of meta-optimisers over seeds.

  python launchers/optimiser_comparison.py --runs=runs/cmp \
      --out=runs/cmp/meta_optimisers.png --minutes=30

--runs holds runs named <optimiser>_s<seed> (gradient, es, hybrid: a
tpu_meta_train.py work directory; pbt: a pbt_meta_train.py one) and the
compare.py work directories that compare their rules with A2C. Writes the
validation score over wall clock (PNG), its numbers and the pooled held-out
table (JSON next to it) and the table as markdown (.md next to it).
docs/meta_optimisers.md shows the whole recipe.
"""

# pylint: disable=g-bad-import-order
from lpg_tf.experiments import cli  # Before TensorFlow loads: quiets it.
from absl import app
from absl import flags

from lpg_tf import errors
from lpg_tf.experiments import optimiser_comparison
# pylint: enable=g-bad-import-order

_RUNS = flags.DEFINE_string("runs", None, "The comparison's directory.")
_OUT = flags.DEFINE_string("out", None, "The PNG to write (JSON and markdown "
                           "go next to it).")
_MINUTES = flags.DEFINE_float(
    "minutes", 0.0, "End the time axis here (the runs' budget); 0: at the "
    "last validation.")

_SEEDS = flags.DEFINE_list("seeds", [], "Only these seeds' runs (default: "
                           "every seed found).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    optimiser_comparison.write_comparison(_RUNS.value, _OUT.value,
                                          _MINUTES.value,
                                          [int(s) for s in _SEEDS.value])
  except (errors.ConfigError, ValueError) as error:
    raise app.UsageError(str(error)) from error


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
