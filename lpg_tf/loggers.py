"""Where a run's numbers go: one `Logger` interface, several destinations.

Acme's logger role: whatever runs (agent training, meta-training) is handed a
`Logger` and calls `write(step, metrics)` at its logging points; it does not
know whether the numbers end up in TensorBoard, a CSV file, the console or all
three (`Dispatcher`). Tests hand it a logger of their own.

  logger = Dispatcher([TensorBoardLogger("run/tb"),
                       ConsoleLogger("meta-step", total=1500)])
  logger.write(10, {"meta_loss": 0.3, "tabular/dense/episode_return": 0.8})
  logger.close()

A leaf module: it imports only the standard library, absl, numpy and TensorFlow.
"""

import abc
import csv
import fnmatch
import math
import time
from typing import Callable, List, Mapping, Optional, Sequence

from absl import logging
import numpy as np
import tensorflow as tf

Metrics = Mapping[str, float]


class Logger(abc.ABC):
  """Receives a run's numbers at its logging points."""

  @abc.abstractmethod
  def write(self, step: int, metrics: Metrics) -> None:
    """Records `metrics` (name -> number) at `step` of the run's x axis."""

  def close(self) -> None:
    """Flushes and releases what the logger holds; no write follows."""


def _is_finite_number(value) -> bool:
  return isinstance(value, (int, float, np.number)) and math.isfinite(value)


class TensorBoardLogger(Logger):
  """One TensorBoard scalar per metric; non-finite values are skipped.

  A NaN (say, the return of a logging window where no episode ended) would draw
  nothing useful and hide the rest of the curve's scale, so it is left out.
  """

  def __init__(self, logdir: str):
    self._writer = tf.summary.create_file_writer(logdir)

  def write(self, step: int, metrics: Metrics) -> None:
    with self._writer.as_default(step=step):
      for name, value in metrics.items():
        if _is_finite_number(value):
          tf.summary.scalar(name, float(value))

  def close(self) -> None:
    self._writer.close()


class CSVLogger(Logger):
  """One row per `write`, with columns fixed at construction.

  Readers (plots, spreadsheets, tests) rely on the columns, so they never
  change during a run: a metric that is not a column is an error, a column
  missing from a write is left empty. `step` is not written: a run that wants
  it as a column puts it into `metrics` under the column's name. Each row is
  flushed, so a crashed run keeps its rows.
  """

  def __init__(self, path: str, columns: Sequence[str]):
    self._columns = tuple(columns)
    self._file = open(path, "w", newline="")
    self._csv = csv.DictWriter(self._file, fieldnames=self._columns,
                               restval="")
    self._csv.writeheader()
    self._file.flush()

  def write(self, step: int, metrics: Metrics) -> None:
    del step
    unknown = sorted(set(metrics) - set(self._columns))
    if unknown:
      raise ValueError(f"{unknown} are not columns of this CSV file "
                       f"({list(self._columns)})")
    self._csv.writerow(dict(metrics))
    self._file.flush()

  def close(self) -> None:
    self._file.close()


def _format_value(value) -> str:
  if isinstance(value, (int, np.integer)):
    return str(int(value))
  return f"{value:.4g}"


class ConsoleLogger(Logger):
  """One absl INFO line per write: progress, rate, time left and chosen metrics.

  The line reads `<label> <step>/<total> | <rate> <unit>/s | ~<eta>s left |
  name value | ...`. The rate is measured between two consecutive writes, so
  start-up and compilation before the first write do not count; the first line
  says "warming up" instead.
  """

  def __init__(self, label: str, total: Optional[int] = None,
               unit: str = "steps", keys: Optional[Sequence[str]] = None,
               clock: Callable[[], float] = time.monotonic):
    """Configures the line.

    Args:
      label: what the steps count, first on the line (e.g. "meta-step").
      total: the run's last step, for "step/total" and the time left.
      unit: the unit of the rate.
      keys: the metrics to show, as shell-style patterns in display order
        (e.g. ["meta_loss", "*/episode_return"]); None shows all, sorted.
      clock: seconds, monotonic (tests pass a fake).
    """
    self._label = label
    self._total = total
    self._unit = unit
    self._keys = None if keys is None else tuple(keys)
    self._clock = clock
    self._last: Optional[tuple] = None

  def _selected(self, metrics: Metrics) -> List[str]:
    if self._keys is None:
      return sorted(metrics)
    names: List[str] = []
    for pattern in self._keys:
      names.extend(name for name in sorted(fnmatch.filter(metrics, pattern))
                   if name not in names)
    return names

  def write(self, step: int, metrics: Metrics) -> None:
    now = self._clock()
    parts = [f"{self._label} {step}" + (f"/{self._total}" if self._total else "")]
    if self._last is not None and step > self._last[0] and now > self._last[1]:
      rate = (step - self._last[0]) / (now - self._last[1])
      parts.append(f"{rate:.4g} {self._unit}/s")
      if self._total:
        parts.append(f"~{max(self._total - step, 0) / rate:.0f}s left")
    else:
      parts.append("warming up")
    self._last = (step, now)
    parts.extend(f"{name} {_format_value(metrics[name])}"
                 for name in self._selected(metrics))
    logging.info("%s", " | ".join(parts))


class Dispatcher(Logger):
  """Fans every write out to several loggers."""

  def __init__(self, loggers: Sequence[Logger]):
    self._loggers = tuple(loggers)

  def write(self, step: int, metrics: Metrics) -> None:
    for logger in self._loggers:
      logger.write(step, metrics)

  def close(self) -> None:
    for logger in self._loggers:
      logger.close()
