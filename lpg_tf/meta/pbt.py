"""Population-based training of meta-learners: the explore step and the lineage.

PBT (Jaderberg et al., 2017) trains P meta-learners at once. Every M
meta-steps the worst members *exploit* a better one (they continue from a copy
of its whole training state and take its hyperparameters) and then *explore*
(perturb those hyperparameters). The scheduling and the exploit decision are
Ray Tune's `PopulationBasedTraining` (`lpg_tf.experiments.pbt_meta_train`);
this module holds what is the project's own and needs no Ray: the search space
with its bounds, the members' first hyperparameters, the perturbation (which
never leaves the bounds) and the lineage file.

A member's hyperparameters are a flat mapping from dotted config keys (e.g.
"meta.learning_rate") to values. Numeric ones have a `Bounds` in the space;
the rest (the optimiser mode) travel with the state they belong to: a copied
member keeps its donor's value and explore never changes it, since the
meta-optimiser's state in the copied checkpoint is that mode's.
"""

import dataclasses
import datetime
import json
import math
import os
from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np

from lpg_tf import errors

# Ray Tune's defaults, and the PBT paper's: multiply by 0.8 or 1.2, or with
# this probability draw a fresh value from the space.
PERTURBATION_FACTORS = (0.8, 1.2)
RESAMPLE_PROBABILITY = 0.25

Hyperparameters = Dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Bounds:
  """The range a numeric hyperparameter is drawn from and perturbed within.

  Attributes:
    low: the smallest value (inclusive).
    high: the largest value (inclusive).
    log: draw uniformly in log space (learning rates, costs).
    integer: the value is an int (e.g. K); perturbations round to one.
  """
  low: float
  high: float
  log: bool = False
  integer: bool = False

  def __post_init__(self):
    if not self.low <= self.high or (self.log and self.low <= 0):
      raise errors.ConfigError(f"Invalid hyperparameter bounds {self}")

  def clip(self, value: float) -> Any:
    """`value` inside the bounds (and rounded if integer)."""
    value = min(max(value, self.low), self.high)
    return int(round(value)) if self.integer else float(value)

  def sample(self, rng: np.random.Generator) -> Any:
    """A value drawn uniformly (in log space if `log`) within the bounds."""
    if self.log:
      value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
    elif self.integer:
      value = rng.integers(int(self.low), int(self.high), endpoint=True)
    else:
      value = rng.uniform(self.low, self.high)
    return self.clip(value)


SearchSpace = Mapping[str, Bounds]


def check_settings(num_members: int, interval: int, num_meta_steps: int) -> None:
  """Raises ConfigError for a population or budget PBT cannot work with.

  Args:
    num_members: P; PBT needs at least two members to copy between.
    interval: M, meta-steps between exploit/explore decisions.
    num_meta_steps: each member's budget; shorter than one interval, no
      member would ever be compared.
  """
  if isinstance(num_members, bool) or not isinstance(num_members, int) or num_members < 2:
    raise errors.ConfigError(
        f"Population-based training needs at least 2 members (--members), got "
        f"{num_members!r}")
  if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
    raise errors.ConfigError(
        f"The exploit interval (--interval) must be a positive number of "
        f"meta-steps, got {interval!r}")
  if num_meta_steps < interval:
    raise errors.ConfigError(
        f"Each member's budget of {num_meta_steps} meta-steps "
        f"(config.num_meta_steps) is shorter than one exploit interval of "
        f"{interval}: no member would ever be compared. Raise "
        f"--config.num_meta_steps or lower --interval")


def check_within(hyperparameters: Mapping[str, Any], space: SearchSpace) -> None:
  """Raises ConfigError if a starting value lies outside its bounds."""
  for key, bounds in space.items():
    value = hyperparameters[key]
    if not bounds.low <= value <= bounds.high:
      raise errors.ConfigError(
          f"{key}={value!r} lies outside the PBT search space "
          f"[{bounds.low}, {bounds.high}]")


def initial_hyperparameters(base: Mapping[str, Any], space: SearchSpace,
                            num_members: int, rng: np.random.Generator,
                            modes: Optional[Sequence[str]] = None,
                            mode_key: str = "meta.optimiser"
                           ) -> Sequence[Hyperparameters]:
  """Each member's first hyperparameters.

  Member 0 starts at `base` (the config's values, so a PBT run always holds the
  plain run's settings); the others draw every numeric hyperparameter from the
  space. With `modes`, member i's `mode_key` is modes[i % len(modes)].
  """
  check_within(base, space)
  members = []
  for index in range(num_members):
    values = dict(base)
    if index:
      values.update({key: bounds.sample(rng) for key, bounds in space.items()})
    if modes:
      values[mode_key] = modes[index % len(modes)]
    members.append(values)
  return members


def explore(hyperparameters: Mapping[str, Any], space: SearchSpace,
            rng: np.random.Generator,
            resample_probability: float = RESAMPLE_PROBABILITY,
            factors: Sequence[float] = PERTURBATION_FACTORS) -> Hyperparameters:
  """PBT's explore step: each numeric hyperparameter is redrawn from the space
  with `resample_probability`, else multiplied by one of `factors`; the result
  is clipped to its bounds (integers move by at least one when the factor
  would leave them unchanged). Values without bounds are kept."""
  new = dict(hyperparameters)
  for key, bounds in space.items():
    if rng.uniform() < resample_probability:
      new[key] = bounds.sample(rng)
      continue
    factor = factors[rng.integers(len(factors))]
    value = hyperparameters[key] * factor
    if bounds.integer and round(value) == hyperparameters[key]:
      value = hyperparameters[key] + (1 if factor > 1 else -1)
    new[key] = bounds.clip(value)
  return new


def append_lineage(path: str, event: str, member: str, meta_step: int,
                   hyperparameters: Mapping[str, Any],
                   donor: Optional[str] = None,
                   donor_hyperparameters: Optional[Mapping[str, Any]] = None,
                   donor_fitness: Optional[float] = None) -> Dict[str, Any]:
  """Appends one line (a JSON record) to the lineage file and returns it.

  Args:
    path: the lineage file (JSON lines); members of one run share it, so each
      record is one `write` of one line in append mode.
    event: "start" (a new member), "exploit" (it copied `donor`) or "resume"
      (it continued from its own checkpoint after a restart).
    member: the member's id.
    meta_step: the meta-step its state is at.
    hyperparameters: what it trains with from now on.
    donor: with "exploit", whom it copied, and that member's
      `donor_hyperparameters` and last `donor_fitness`.
  """
  record = {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "event": event, "member": member, "meta_step": meta_step,
            "hyperparameters": dict(hyperparameters)}
  if donor is not None:
    record.update(donor=donor, donor_hyperparameters=dict(donor_hyperparameters or {}),
                  donor_fitness=donor_fitness)
  line = json.dumps(record, sort_keys=True) + "\n"
  handle = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
  try:
    os.write(handle, line.encode())
  finally:
    os.close(handle)
  return record


def read_lineage(path: str) -> Sequence[Dict[str, Any]]:
  """The lineage file's records, oldest first (none if it does not exist)."""
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]
