"""A rule's hyperparameters chosen on validation instances, then tested.

The fair comparison of update rules (`compare.py`) gives every rule the same
treatment: its alpha = (alpha_lr, alpha_y) is chosen from a grid by the mean
final return (`evaluation.final_returns`) over tuning seeds, then the chosen
alpha trains fresh agents on test seeds, and the two kinds of seeds never meet
each other or anything meta-training used.

Grids (`settings_grid`):
  * an LPG rule on an Appendix A environment: Table 3's (alpha_lr, alpha_y)
    grid of the environment (`lifetime_settings.for_env`), the arms its
    bandit chose from during meta-training;
  * A2C on an Appendix A environment: Table 3's alpha_lr grid of the
    environment (the rule's own) together with A2C's sweep for the
    environment's optimiser (`evaluation.A2C_SWEPT_LEARNING_RATES`) and its
    default rate, so A2C may pick anything the rule may, and more; A2C reads
    no y, so alpha_y is 0;
  * MinAtar: alpha_lr from the rates searched for MinAtar's agent
    (`agents.MINATAR.searched_learning_rates`), and for LPG rules alpha_y from
    Table 4's searched values (`agents.ATARI.searched_kl_costs`, Table 3's
    too).

Seeds (every draw in lpg_tf is a stateless function of a `[2]` int32 key).
One Evaluator run draws all its lifetimes from one key; with comparison seed
c (`--seed`, in [0, MAX_SEED)):
  * tuning: `[c, TUNING_KEY_WORD]`; tuning seed j is lifetime j of that draw,
    the same for every grid point (`Evaluator(num_seeds=...)`) and every rule;
  * test: `[c, TEST_KEY_WORD]`; test seed j is lifetime j of that draw, the
    same for every rule (common random numbers), and the uniformly random
    policy is measured on the same instances.
Meta-training with seed t uses `[1000 t + group, 1..3]` and `[t + 7919, reset
count]`, its validation `[t, 1000 + group]` (groups < 30), and
`train_agent --seed=s` / `Evaluator.run(seed=s)` `[s, 0]`: the second words
5000 and 6000 are none of 0..3 or 1000 + group, and c < MAX_SEED = 7919 keeps
the first word off every reset stream's, so no key is shared. (Environments
have finite instance sets, so "held out" means drawn from independent streams,
not guaranteed different instances.)
"""

from typing import NamedTuple, Tuple

import numpy as np

from lpg_tf import agents
from lpg_tf.envs import minatar
from lpg_tf.learning import evaluation
from lpg_tf.meta import lifetime_settings
from lpg_tf.meta import population

TEST_KEY_WORD = 5000  # Second key word of test draws (module docstring).
TUNING_KEY_WORD = 6000  # Second key word of tuning draws.
# Comparison seeds stay below the first word of meta-training's reset streams,
# `[t + 7919, count]` for any run seed t >= 0.
MAX_SEED = population.RESET_SEED_OFFSET
A2C_NAME = "a2c"


def test_key(seed: int) -> Tuple[int, int]:
  """The key of the test seeds of comparison seed `seed`."""
  return (seed, TEST_KEY_WORD)


def tuning_key(seed: int) -> Tuple[int, int]:
  """The key of the tuning seeds of comparison seed `seed`."""
  return (seed, TUNING_KEY_WORD)


class Setting(NamedTuple):
  """One grid point: the agent's alpha_lr and alpha_y (Eq. 2)."""
  learning_rate: float
  kl_cost: float


def settings_grid(env_name: str, rule_name: str) -> Tuple[Setting, ...]:
  """The grid `rule_name` ("a2c" or an LPG rule) is tuned over on `env_name`
  (module docstring), in a fixed order."""
  is_a2c = rule_name == A2C_NAME
  if env_name.startswith(minatar.PREFIX):
    learning_rates = agents.MINATAR.searched_learning_rates
    kl_costs = agents.ATARI.searched_kl_costs
  else:
    row = lifetime_settings.for_env(env_name)
    learning_rates, kl_costs = row.learning_rates, row.kl_costs
    if is_a2c:
      optimiser = agents.preset_for(env_name).optimiser
      learning_rates = (learning_rates
                        + evaluation.A2C_SWEPT_LEARNING_RATES[optimiser]
                        + (evaluation.A2C_LEARNING_RATES[optimiser],))
  learning_rates = tuple(sorted(set(learning_rates)))
  if is_a2c:
    return tuple(Setting(float(lr), 0.0) for lr in learning_rates)
  return tuple(Setting(float(lr), float(kl)) for lr in learning_rates
               for kl in sorted(kl_costs))


def choose(returns: np.ndarray) -> int:
  """The best grid point: the highest mean final return over tuning seeds.

  Args:
    returns: `[grid points, tuning seeds]` final returns, NaN for a lifetime
      that ended no episode (left out of its point's mean).

  Returns:
    The index of the best point; ties go to the first, and a point without
    any finite return never wins unless none has one (then the first).
  """
  returns = np.asarray(returns, np.float64)
  if returns.ndim != 2 or not returns.size:
    raise ValueError(f"returns must be [grid points, seeds], got {returns.shape}")
  finite = np.isfinite(returns)
  sums = np.where(finite, returns, 0.0).sum(axis=1)
  counts = finite.sum(axis=1)
  means = np.where(counts > 0, sums / np.maximum(counts, 1), -np.inf)
  return int(np.argmax(means))


class Tuning(NamedTuple):
  """A rule's tuning on one environment.

  Attributes:
    settings: the grid.
    returns: `[grid points, tuning seeds]` final returns.
    best: index of the chosen setting.
  """
  settings: Tuple[Setting, ...]
  returns: np.ndarray
  best: int

  @property
  def chosen(self) -> Setting:
    return self.settings[self.best]


def tune(evaluator: evaluation.Evaluator, settings: Tuple[Setting, ...],
         gamma: float, seed: int) -> Tuning:
  """Every grid point x tuning seed as one batched run; the best point.

  Args:
    evaluator: built with L = len(settings) x S lifetimes and num_seeds = S.
    settings: the grid.
    gamma: the agents' discount factor.
    seed: the comparison seed (the run uses `tuning_key(seed)`).
  """
  num_seeds = evaluator.num_seeds
  if evaluator.num_lifetimes != len(settings) * num_seeds:
    raise ValueError(f"{evaluator.num_lifetimes} lifetimes are not "
                     f"{len(settings)} settings x {num_seeds} seeds")
  per_lifetime = np.repeat(np.array(settings, np.float32), num_seeds, axis=0)
  result = evaluator.run(per_lifetime[:, 0], per_lifetime[:, 1], gamma,
                         tuning_key(seed))
  returns = result.final_returns.reshape(len(settings), num_seeds)
  return Tuning(tuple(settings), returns, choose(returns))


def evaluate_chosen(evaluator: evaluation.Evaluator, setting: Setting,
                    gamma: float, seed: int) -> evaluation.Evaluation:
  """The chosen setting on the test seeds (one lifetime per seed)."""
  return evaluator.run(setting.learning_rate, setting.kl_cost, gamma,
                       test_key(seed))
