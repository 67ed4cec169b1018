"""A meta-training run's length from a budget of environment steps.

Appendix B.1 trains "for approximately 10^10 steps of interactions in total",
over 960 parallel lifetimes. One meta-step lives (K + 1) x T x B environment
steps in every lifetime (K inner rollouts and theta_K's scoring rollout), so
with Table 2's values a meta-step costs 960 x 6 x 20 x 64 = 7,372,800 steps and
10^10 steps are 1,356 meta-steps. A run is given either a number of meta-steps
or such a budget; the budget gives the largest number of meta-steps that does
not exceed it.
"""

from typing import List, Optional

from lpg_tf import errors
from lpg_tf.meta import lifetime_settings
from lpg_tf.meta import population as population_lib


def env_steps_per_meta_step(spec: population_lib.PopulationSpec) -> int:
  """Environment steps of one meta-step over the whole population."""
  return (spec.env_steps_per_window * spec.lifetimes_per_env
          * len(spec.env_names))


def num_meta_steps(spec: population_lib.PopulationSpec,
                   meta_steps: Optional[int],
                   total_env_steps: Optional[float]) -> int:
  """The run's length in meta-steps: `meta_steps`, or else from the budget.

  Args:
    spec: the population.
    meta_steps: an explicit number of meta-steps, or None.
    total_env_steps: the budget of environment steps, used when `meta_steps`
      is None.

  Raises:
    errors.ConfigError: both or neither given, `meta_steps` not a positive
      integer, or a budget smaller than one meta-step.
  """
  if (meta_steps is None) == (total_env_steps is None):
    raise errors.ConfigError(
        "Give exactly one of num_meta_steps and total_env_steps (the other "
        f"None); got {meta_steps!r} and {total_env_steps!r}")
  if meta_steps is not None:
    if (not isinstance(meta_steps, int) or isinstance(meta_steps, bool)
        or meta_steps <= 0):
      raise errors.ConfigError(
          f"num_meta_steps must be a positive integer, got {meta_steps!r}")
    return meta_steps
  per_step = env_steps_per_meta_step(spec)
  if not total_env_steps >= per_step:
    raise errors.ConfigError(
        f"total_env_steps {total_env_steps!r} is less than one meta-step "
        f"({per_step} environment steps)")
  return int(total_env_steps // per_step)


def unfinished_lifetimes(spec: population_lib.PopulationSpec,
                         meta_steps: int,
                         steps_per_window: Optional[int] = None) -> List[str]:
  """Environments whose lifetime (Table 3 x lifetime_scale) is longer than
  what a lifetime slot lives in the whole run: only their staggered first
  lifetimes end (population module docstring).

  `steps_per_window`: environment steps a lifetime lives per meta-step;
  None: the meta-gradient's, `PopulationSpec.env_steps_per_window`.
  """
  lived = meta_steps * (steps_per_window or spec.env_steps_per_window)
  return [name for name in spec.env_names
          if lifetime_settings.for_env(name).lifetime_steps
          * spec.lifetime_scale > lived]
