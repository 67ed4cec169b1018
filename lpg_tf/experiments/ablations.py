"""Figure 7's meta-training runs: LPG and each ablation on one budget and seeds.

Section 4.4: "'LPG w/o Softmax(y)' uses y in R^30 without softmax but with
||y - y_hat||^2 instead of KL-divergence in Eq. (2). 'LPG w/o Entropy(y)' and
'LPG w/o L2' are without entropy regularisation of y and without L2
regularisation of pi_hat, y_hat in Eq. (4) respectively. 'LPG fixed hyper' is
trained with fixed hyperparameters for each training environment instead of
balancing them during meta-training", and LPG-V (Section 4.1) is there too.
Each variant is the given config with a few values changed (VARIANTS); every
variant runs the same meta-steps on the same seeds, so the curves differ only
by the idea left out.

Runs live in `<workdir>/runs/<variant>/seed_<i>` and are ordinary meta-training
run directories (`meta_train.meta_train`): running again continues unfinished
runs and skips finished ones, and a run directory holding a different config
is refused.
"""

import os
from typing import Any, Dict, List, Mapping, NamedTuple, Sequence

from absl import logging
import ml_collections

from lpg_tf import errors
from lpg_tf.experiments import cli
from lpg_tf.experiments import meta_train


class Variant(NamedTuple):
  """One line of Figure 7.

  Attributes:
    label: the paper's name for it.
    overrides: config key (dotted) -> value, applied to the base config.
  """
  label: str
  overrides: Mapping[str, Any]


VARIANTS: Dict[str, Variant] = {
    "lpg": Variant("LPG", {}),
    "lpg_v": Variant("LPG-V", {"rule.kind": "lpg_v",
                               "rule.y_head_init_stddev": None}),
    "no_softmax": Variant("LPG w/o Softmax(y)",
                          {"rule.y_softmax": False,
                           "meta.prediction_entropy_cost": 0.0}),
    "no_entropy": Variant("LPG w/o Entropy(y)",
                          {"meta.prediction_entropy_cost": 0.0}),
    "no_l2": Variant("LPG w/o L2", {"meta.pi_hat_l2_cost": 0.0,
                                    "meta.y_hat_l2_cost": 0.0}),
    "fixed_hyper": Variant("LPG fixed hyper", {"meta.bandit": False}),
}
RUNS_DIR = "runs"


def resolve_variants(names: Sequence[str]) -> List[str]:
  """The variants of `--variants`: "all" or names of VARIANTS, each once
  (`cli.resolve_names`)."""
  return cli.resolve_names(names, tuple(VARIANTS), "variants", "variant")


def variant_config(config: ml_collections.ConfigDict, name: str,
                   seed_index: int) -> ml_collections.ConfigDict:
  """`config` with variant `name`'s overrides and seed config.seed + index."""
  config = cli.with_values(config, VARIANTS[name].overrides)
  config.seed = config.seed + seed_index
  return config


def run_directory(workdir: str, name: str, seed_index: int) -> str:
  """Where variant `name`'s run with seed index `seed_index` lives."""
  return os.path.join(workdir, RUNS_DIR, name, f"seed_{seed_index}")


def run_variants(config: ml_collections.ConfigDict, workdir: str,
                 names: Sequence[str], seeds: int) -> Dict[str, List[str]]:
  """Meta-trains (or continues, or skips when finished) every variant in
  `names` on `seeds` seeds; returns variant -> its run directories.

  Raises:
    errors.ConfigError: a variant's config is invalid (checked for every
      variant before any run starts), or `seeds` < 1.
  """
  if seeds < 1:
    raise errors.ConfigError(f"--seeds must be at least 1, got {seeds}")
  configs = {}
  for name in names:
    for index in range(seeds):
      variant = variant_config(config, name, index)
      try:
        meta_train.validate(variant)
      except errors.ConfigError as e:
        raise errors.ConfigError(f"Variant {name}: {e}") from e
      configs[name, index] = variant
  unchanged = [n for n in names if n != "lpg" and all(
      cli.config_value(config, k) == v for k, v in VARIANTS[n].overrides.items())]
  for name in unchanged:
    logging.warning("Variant %s changes nothing in this config: its runs "
                    "repeat LPG's", name)
  directories: Dict[str, List[str]] = {n: [] for n in names}
  for (name, index), variant in configs.items():
    directory = run_directory(workdir, name, index)
    logging.info("Figure 7: %s (%s), seed %d -> %s", name,
                 VARIANTS[name].label, variant.seed, directory)
    meta_train.meta_train(variant, directory)
    directories[name].append(directory)
  return directories

