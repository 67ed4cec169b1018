"""Signal of ES estimates by population size, sigma and window.

  python launchers/es_signal.py --config=configs/cpu.py --out=runs/es_signal.json
  python launchers/es_signal.py --rules=eta_0,runs/cpu/best_rule --out=runs/es_signal.json

For each setting (one at a time around the config's meta.es values), draws
--estimates ES gradient estimates at one eta and one population state and
prints their mean pairwise cosine (how much of an estimate is signal), the
share of groups whose members tied, and seconds per estimate. Writes the
figures as JSON and a markdown table next to it (.md).
"""

# pylint: disable=g-bad-import-order
from lpg_tf.experiments import cli  # Before TensorFlow loads: quiets it.
import os

from absl import app
from absl import flags

from lpg_tf import errors
from lpg_tf.experiments import es_signal
# pylint: enable=g-bad-import-order

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CONFIG = cli.define_config_file(
    "config", os.path.join(_REPO, "configs", "cpu.py"),
    "The population measured on; override values with --config.name=value.")
_OUT = flags.DEFINE_string("out", None, "The JSON to write (markdown goes "
                           "next to it).")
_RULES = flags.DEFINE_list(
    "rules", [es_signal.ETA_0], f"Where to measure: {es_signal.ETA_0} (the "
    "config's initial eta) and/or exported rules' directories.")
_ESTIMATES = flags.DEFINE_integer("estimates", 6, "Estimates per setting.")
_POPULATION_SIZES = flags.DEFINE_list("population_sizes", ["4", "16"],
                                      "Population sizes P to try.")
_SIGMAS = flags.DEFINE_list("sigmas", ["0.003", "0.03", "0.1"], "Sigmas to try.")
_WINDOWS = flags.DEFINE_list("windows", ["5", "20"], "Windows to try.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    settings = es_signal.settings_around(
        _CONFIG.value, [int(p) for p in _POPULATION_SIZES.value],
        [float(s) for s in _SIGMAS.value], [int(w) for w in _WINDOWS.value])
    rules = [None if r == es_signal.ETA_0 else r for r in _RULES.value]
    rows = es_signal.run(_CONFIG.value, settings, _ESTIMATES.value, _OUT.value,
                         rules)
  except (errors.ConfigError, ValueError) as error:
    raise app.UsageError(str(error)) from error
  print(es_signal.markdown(rows), end="", flush=True)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
