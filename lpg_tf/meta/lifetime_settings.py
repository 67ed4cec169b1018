"""Meta-training settings of a lifetime: Table 3's hyperparameter grids and
lifetime lengths, and Table 2's per-lifetime draws.

These decide how a lifetime is run during meta-training, not what the agent is,
so they live here rather than with the agent architectures (`lpg_tf.agents`
keeps Table 3's torso and optimiser, which meta-testing uses too).

`for_env(name)` gives an environment's row: the learning rates alpha_lr and KL
costs alpha_y the bandit p(alpha|E) chooses from (Section 3.4, Eq. 6) and the
length of a lifetime in environment steps.
"""

from typing import NamedTuple, Tuple

GAMMAS = (0.995, 0.99)  # Table 2: gamma, sampled per lifetime.
POLICY_ENTROPY_COSTS = (0.01, 0.02)  # Table 2: beta0 of Eq. 4, sampled per lifetime.

# Table 3's hyperparameter ranges, shared by rows.
_TABULAR_LEARNING_RATES = (20.0, 40.0, 80.0)
_NETWORK_LEARNING_RATES = (0.0005, 0.001, 0.002, 0.005)
_DISTRACTOR_LEARNING_RATES = (0.002, 0.005, 0.01)
_KL_COSTS = (0.1, 0.5, 1.0)
_TABULAR_GRID_LIFETIME = 3_000_000
_CHAIN_LIFETIME = 1_000_000
_RANDOM_GRID_LIFETIME = 30_000_000
_DISTRACTOR_LIFETIME = 2_000_000


class LifetimeSettings(NamedTuple):
  """One row of Table 3, as meta-training uses it.

  Attributes:
    learning_rates: the values of alpha_lr the bandit chooses from.
    kl_costs: the values of alpha_y (Eq. 2) the bandit chooses from.
    lifetime_steps: the length of a lifetime in environment steps.
  """
  learning_rates: Tuple[float, ...]
  kl_costs: Tuple[float, ...]
  lifetime_steps: int

  @property
  def default_learning_rate(self) -> float:
    """The middle of the grid: alpha_lr before the bandit has spoken."""
    return self.learning_rates[len(self.learning_rates) // 2]

  @property
  def default_kl_cost(self) -> float:
    """The middle of the grid: alpha_y before the bandit has spoken."""
    return self.kl_costs[len(self.kl_costs) // 2]


def _tabular(lifetime_steps: int) -> LifetimeSettings:
  return LifetimeSettings(_TABULAR_LEARNING_RATES, _KL_COSTS, lifetime_steps)


_RANDOM_GRID = LifetimeSettings(_NETWORK_LEARNING_RATES, _KL_COSTS,
                                _RANDOM_GRID_LIFETIME)

TABLE_3 = {
    "tabular/dense": _tabular(_TABULAR_GRID_LIFETIME),
    "tabular/sparse": _tabular(_TABULAR_GRID_LIFETIME),
    "tabular/long_horizon": _tabular(_TABULAR_GRID_LIFETIME),
    "tabular/longer_horizon": _tabular(_TABULAR_GRID_LIFETIME),
    "tabular/long_dense": _tabular(_TABULAR_GRID_LIFETIME),
    "random/dense": _RANDOM_GRID,
    "random/long_horizon": _RANDOM_GRID,
    "random/small": _RANDOM_GRID,
    "random/small_sparse": _RANDOM_GRID,  # Table 3's random-grid row "sparse".
    "random/very_dense": _RANDOM_GRID,
    "chain/short": _tabular(_CHAIN_LIFETIME),
    "chain/short_noisy": _tabular(_CHAIN_LIFETIME),
    "chain/long": _tabular(_CHAIN_LIFETIME),
    "chain/long_noisy": _tabular(_CHAIN_LIFETIME),
    "chain/distractor": LifetimeSettings(_DISTRACTOR_LEARNING_RATES, _KL_COSTS,
                                         _DISTRACTOR_LIFETIME),
}


def for_env(env_name: str) -> LifetimeSettings:
  """Table 3's row for a training environment, e.g. "random/very_dense".

  Raises:
    ValueError: for a name outside Table 3.
  """
  if env_name not in TABLE_3:
    raise ValueError(f"No Table 3 settings for {env_name!r}; known: "
                     f"{', '.join(TABLE_3)}")
  return TABLE_3[env_name]
