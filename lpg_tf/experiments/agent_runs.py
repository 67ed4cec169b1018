"""What agent-training runs share, toy environments and Atari alike.

`train_agent` (toy environments) and `atari_training` (Atari through Reverb) both
train agents from scratch and write the same kind of work directory: curve.csv
(one row per seed and logging point), tb/ and curve.png. The work-directory
check, the logging cadence, the prediction size of rules that read no y, the
agent hyperparameters a shipped rule expects and the curve.csv logger live
here, so neither run module imports the other for them (only `train_agent`
dispatches to `atari_training`).
"""

import os
import shutil
from typing import Dict, List, Optional, Sequence, Tuple

from absl import logging

from lpg_tf import errors
from lpg_tf import loggers
from lpg_tf.analysis import curves
from lpg_tf.learning import evaluation
from lpg_tf.rules import pretrained

DEFAULT_PREDICTION_SIZE = evaluation.DEFAULT_PREDICTION_SIZE
# Updates between logging points when log_every is not given: about
# evaluation.LOG_POINTS points, as many as an evaluation's.
default_log_every = evaluation.log_every


# Everything an agent-training run writes into its work directory; --overwrite
# removes these and nothing else.
OWN_OUTPUTS = (curves.CSV_NAME, curves.PNG_NAME, curves.TB_DIR)


def rule_hyperparameters(rule_name: str, env_name: str,
                         learning_rate: Optional[float],
                         kl_cost: Optional[float]
                        ) -> Tuple[Optional[float], Optional[float]]:
  """alpha_lr and alpha_y of a run of `rule_name` in `env_name`.

  Values given win. For a rule shipped with the package (`pretrained[:NAME]`)
  a value not given is the one its hyperparameters.json has for `env_name`,
  and the choice is logged; otherwise it stays None (the run's own default).

  Raises:
    errors.ConfigError: an unknown shipped rule, or one without
      hyperparameters for `env_name` while a value is missing.
  """
  name = pretrained.parse(rule_name)
  if name is None or (learning_rate is not None and kl_cost is not None):
    return learning_rate, kl_cost
  expected = pretrained.hyperparameters(name, env_name)
  chosen = (expected.learning_rate if learning_rate is None else learning_rate,
            expected.kl_cost if kl_cost is None else kl_cost)
  origin = lambda given: ("given" if given is not None
                          else f"the rule's {pretrained.HYPERPARAMETERS_FILE}")
  logging.info("Pretrained rule %s on %s: alpha_lr=%g (%s), alpha_y=%g (%s)",
               name, env_name, chosen[0], origin(learning_rate), chosen[1],
               origin(kl_cost))
  return chosen


def check_workdir(workdir: str, overwrite: bool) -> None:
  """Refuses a work directory that already holds something, unless `overwrite`.

  With `overwrite`, the previous run's curves and summaries are removed so the new
  run's TensorBoard events do not mix with the old ones. A directory holding
  anything an agent-training run does not write (a meta-training run, say) is
  refused even then: --overwrite never deletes another kind of run.
  """
  if not workdir:
    raise errors.ConfigError("--workdir is required")
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise errors.ConfigError(f"--workdir {workdir!r} exists and is not a directory")
  if not os.path.isdir(workdir) or not os.listdir(workdir):
    return
  if not overwrite:
    raise errors.ConfigError(
        f"--workdir {workdir!r} already holds {sorted(os.listdir(workdir))}; "
        "choose a new directory, or pass --overwrite to replace that run")
  foreign = sorted(set(os.listdir(workdir)) - set(OWN_OUTPUTS))
  if foreign:
    raise errors.ConfigError(
        f"--workdir {workdir!r} holds {foreign}, which train_agent does not "
        f"write (another kind of run); --overwrite replaces only "
        f"{', '.join(OWN_OUTPUTS)}: choose another directory")
  for name in (curves.CSV_NAME, curves.PNG_NAME):
    if os.path.exists(os.path.join(workdir, name)):
      os.remove(os.path.join(workdir, name))
  shutil.rmtree(os.path.join(workdir, curves.TB_DIR), ignore_errors=True)


class CurveLogger(loggers.CSVLogger):
  """`workdir/curve.csv`, one row per seed and logging point; keeps the rows.

  The rows are what `curves.plot_curves` draws at the end of the run.
  """

  def __init__(self, workdir: str, columns: Sequence[str]):
    super().__init__(os.path.join(workdir, curves.CSV_NAME), columns)
    self._rows: List[Dict[str, float]] = []

  @property
  def rows(self) -> List[Dict[str, float]]:
    return self._rows

  def write(self, step: int, metrics: loggers.Metrics) -> None:
    super().write(step, metrics)
    self._rows.append(dict(metrics))
