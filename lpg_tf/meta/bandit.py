"""The hyperparameter bandit p(alpha|E) of Section 3.4 and Appendix B.1 (Eq. 6).

At the beginning of each lifetime in environment E the bandit samples agent
hyperparameters alpha = (alpha_lr, alpha_y), the learning rate and the KL cost
of Eq. 2, from the grid of Table 3, with

  p(alpha|E) ∝ exp((R(alpha, E) + rho / sqrt(N(alpha, E))) / tau),     (Eq. 6)

where R is the final return at the end of a lifetime with alpha in E averaged
over the last 10 lifetimes, N the number of lifetimes simulated with alpha in E,
tau the temperature and rho the exploration-bonus coefficient (Table 2).

`Bandit` is the bandit of one environment; `BanditSet` holds one per
environment plus the numpy random generator that samples from them, and is a
`tf.train.experimental.PythonState`, so it goes into the training
`tf.train.Checkpoint` and resumes exactly (DESIGN.md, idiom 6):

  bandits = BanditSet({name: (s.learning_rates, s.kl_costs)
                       for name, s in lifetime_settings.TABLE_3.items()}, seed=0)
  arm, learning_rate, kl_cost = bandits.sample("tabular/dense")
  ...  # run the lifetime
  bandits.update("tabular/dense", arm, final_return)
"""

import collections
import copy
import json
import math
import operator
import types
from typing import Any, Deque, Dict, List, Mapping, Sequence, Tuple

import numpy as np
import tensorflow as tf

from lpg_tf import errors

TEMPERATURE = 0.1  # Table 2: bandit temperature tau.
EXPLORATION_BONUS = 0.2  # Table 2: bandit exploration bonus rho.
WINDOW = 10  # Appendix B.1: R is averaged over the last 10 lifetimes.


def _check_finite_sequence(name: str,
                           values: Sequence[float]) -> Tuple[float, ...]:
  values = tuple(float(v) for v in values)
  if not values:
    raise errors.ConfigError(f"{name} must not be empty")
  if not all(math.isfinite(v) for v in values):
    raise errors.ConfigError(f"{name} must be finite, got {values}")
  return values


class Bandit:
  """p(alpha|E) of Eq. 6 for one environment E, over the grid of Table 3.

  The arms are the grid `learning_rates x kl_costs`, learning-rate major:
  arm `i * len(kl_costs) + j` is `(learning_rates[i], kl_costs[j])`.

  Two cases Eq. 6 leaves open are handled as follows.
  * Untried arms (N = 0): the bonus rho / sqrt(N) is infinite and R undefined.
    We take the limit N -> 0 of Eq. 6: while any arm is untried, p is uniform
    over the untried arms and zero elsewhere. So the first lifetimes try every
    arm once, in random order, before Eq. 6 applies with finite N.
  * Fewer than `window` results: R is the mean of the results there are.
  N counts every lifetime with the arm, not only those still in the window.
  """

  def __init__(self,
               learning_rates: Sequence[float],
               kl_costs: Sequence[float],
               temperature: float = TEMPERATURE,
               exploration_bonus: float = EXPLORATION_BONUS,
               window: int = WINDOW):
    """Builds a bandit with no lifetimes simulated yet.

    Args:
      learning_rates: the values of alpha_lr (Table 3).
      kl_costs: the values of alpha_y (Table 3).
      temperature: tau > 0 of Eq. 6.
      exploration_bonus: rho >= 0 of Eq. 6.
      window: how many of an arm's latest final returns R averages.

    Raises:
      errors.ConfigError: for an empty or non-finite grid, tau <= 0, rho < 0 or
        window < 1.
    """
    self._learning_rates = _check_finite_sequence("learning_rates",
                                                  learning_rates)
    self._kl_costs = _check_finite_sequence("kl_costs", kl_costs)
    if not (math.isfinite(temperature) and temperature > 0):
      raise errors.ConfigError(
          f"temperature must be finite and > 0, got {temperature}")
    if not (math.isfinite(exploration_bonus) and exploration_bonus >= 0):
      raise errors.ConfigError(
          f"exploration_bonus must be finite and >= 0, got {exploration_bonus}")
    if window < 1:
      raise errors.ConfigError(f"window must be >= 1, got {window}")
    self._temperature = float(temperature)
    self._exploration_bonus = float(exploration_bonus)
    self._window = int(window)
    self._arms = [(lr, kl) for lr in self._learning_rates
                  for kl in self._kl_costs]
    self._counts = [0] * len(self._arms)
    self._returns: List[Deque[float]] = [
        collections.deque(maxlen=self._window) for _ in self._arms]

  @property
  def arms(self) -> List[Tuple[float, float]]:
    """The `(alpha_lr, alpha_y)` pair of each arm, in arm order."""
    return list(self._arms)

  @property
  def num_arms(self) -> int:
    return len(self._arms)

  @property
  def temperature(self) -> float:
    return self._temperature

  @property
  def exploration_bonus(self) -> float:
    return self._exploration_bonus

  @property
  def window(self) -> int:
    return self._window

  @property
  def counts(self) -> np.ndarray:
    """`[num_arms]` int64: N(alpha, E), lifetimes simulated with each arm."""
    return np.array(self._counts, dtype=np.int64)

  @property
  def mean_returns(self) -> np.ndarray:
    """`[num_arms]` float64: R(alpha, E), NaN for arms never tried."""
    return np.array([np.mean(r) if r else np.nan for r in self._returns],
                    dtype=np.float64)

  @property
  def lowest_return(self) -> float:
    """The lowest final return in any arm's window, NaN before any result.

    The pessimistic value a lifetime that ended without a usable return of its
    own reports (`population.Population.finish`)."""
    results = [x for r in self._returns for x in r]
    return min(results) if results else math.nan

  def arm_values(self, arm: int) -> Tuple[float, float]:
    """`(alpha_lr, alpha_y)` of `arm`."""
    return self._arms[self._check_arm(arm)]

  def probabilities(self) -> np.ndarray:
    """`[num_arms]` float64: p(alpha|E) of Eq. 6, untried arms first.

    Returns:
      Uniform over the untried arms while there are any; otherwise
      softmax((R + rho / sqrt(N)) / tau) over all arms.
    """
    counts = self.counts
    untried = counts == 0
    if untried.any():
      return untried / untried.sum()
    logits = (self.mean_returns
              + self._exploration_bonus / np.sqrt(counts)) / self._temperature
    weights = np.exp(logits - logits.max())
    return weights / weights.sum()

  def most_probable_arm(self) -> int:
    """The arm of largest p(alpha|E), the lowest index among ties."""
    return int(np.argmax(self.probabilities()))

  def sample(self, rng: np.random.Generator) -> int:
    """Draws an arm from p(alpha|E) (Eq. 6) with one draw from `rng`."""
    return int(rng.choice(self.num_arms, p=self.probabilities()))

  def update(self, arm: int, final_return: float) -> None:
    """Records the final return of a lifetime that used `arm`.

    Args:
      arm: the arm index `sample` returned for the lifetime.
      final_return: the return at the end of the lifetime.

    Raises:
      ValueError: for an arm out of range or a non-finite return (a diverged
        lifetime), which would otherwise make R NaN for the next 10 lifetimes.
    """
    arm = self._check_arm(arm)
    final_return = float(final_return)
    if not math.isfinite(final_return):
      raise ValueError(
          f"Final return of arm {arm} {self._arms[arm]} is {final_return}; the "
          "bandit (Eq. 6) needs finite returns")
    self._counts[arm] += 1
    self._returns[arm].append(final_return)

  def get_state(self) -> Dict[str, Any]:
    """The bandit's configuration and statistics as JSON-ready Python values.

    Returns:
      A dict of lists, floats and ints; `set_state` restores it exactly (floats
      survive `json` unchanged).
    """
    return dict(self._config(), counts=list(self._counts),
                returns=[list(r) for r in self._returns])

  def set_state(self, state: Mapping[str, Any]) -> None:
    """Restores what `get_state` returned; leaves the bandit unchanged on error.

    Raises:
      ValueError: if `state` is for another grid or configuration, or its
        statistics are inconsistent.
    """
    own = self._config()
    saved = {key: np.asarray(state[key]).tolist() for key in own}
    if saved != own:
      raise ValueError(f"Bandit state is for configuration {saved}, this "
                       f"bandit has {own}")
    counts = [operator.index(c) for c in state["counts"]]
    returns = [[float(x) for x in r] for r in state["returns"]]
    if len(counts) != self.num_arms or len(returns) != self.num_arms:
      raise ValueError(f"Bandit state has {len(counts)} counts and "
                       f"{len(returns)} windows for {self.num_arms} arms")
    for arm, (count, results) in enumerate(zip(counts, returns)):
      if (len(results) > self._window or count < len(results)
          or (count > 0) != bool(results)
          or not all(math.isfinite(x) for x in results)):
        raise ValueError(f"Inconsistent bandit state for arm {arm}: count "
                         f"{count}, returns {results}")
    self._counts = counts
    self._returns = [collections.deque(r, maxlen=self._window)
                     for r in returns]

  def _config(self) -> Dict[str, Any]:
    return {
        "learning_rates": list(self._learning_rates),
        "kl_costs": list(self._kl_costs),
        "temperature": self._temperature,
        "exploration_bonus": self._exploration_bonus,
        "window": self._window,
    }

  def _check_arm(self, arm: int) -> int:
    arm = operator.index(arm)
    if not 0 <= arm < self.num_arms:
      raise ValueError(f"Arm {arm} out of range [0, {self.num_arms})")
    return arm


class BanditSet(tf.train.experimental.PythonState):
  """One `Bandit` per training environment and the generator that samples them.

  A checkpointable object (DESIGN.md, idiom 6): `serialize` writes every
  bandit's state and the PCG64 generator's state as JSON, so after
  `tf.train.Checkpoint(bandits=...)` save and restore the future samples are
  those of an uninterrupted run.
  """

  def __init__(self,
               grids: Mapping[str, Tuple[Sequence[float], Sequence[float]]],
               seed: int,
               temperature: float = TEMPERATURE,
               exploration_bonus: float = EXPLORATION_BONUS,
               window: int = WINDOW):
    """Builds the bandits with no lifetimes simulated yet.

    Args:
      grids: environment name -> `(learning_rates, kl_costs)`, its Table 3 row.
      seed: seed of the PCG64 generator that draws every sample.
      temperature: tau of Eq. 6, shared by all bandits.
      exploration_bonus: rho of Eq. 6, shared by all bandits.
      window: how many latest final returns R averages.

    Raises:
      errors.ConfigError: for no environments or an invalid bandit argument.
    """
    if not grids:
      raise errors.ConfigError("BanditSet needs at least one environment")
    self._bandits = {
        name: Bandit(learning_rates, kl_costs, temperature, exploration_bonus,
                     window)
        for name, (learning_rates, kl_costs) in grids.items()}
    self._rng = np.random.Generator(np.random.PCG64(seed))

  @property
  def bandits(self) -> Mapping[str, Bandit]:
    """Environment name -> its bandit, read-only (for logging)."""
    return types.MappingProxyType(self._bandits)

  def sample(self, env_name: str) -> Tuple[int, float, float]:
    """Samples alpha for a new lifetime in `env_name` (Eq. 6).

    Returns:
      `(arm, alpha_lr, alpha_y)`; pass `arm` back to `update`.
    """
    bandit = self._bandit(env_name)
    arm = bandit.sample(self._rng)
    learning_rate, kl_cost = bandit.arm_values(arm)
    return arm, learning_rate, kl_cost

  def update(self, env_name: str, arm: int, final_return: float) -> None:
    """Records the final return of a lifetime of `env_name` that used `arm`.

    Raises:
      ValueError: for an unknown environment, an arm out of range or a
        non-finite return.
    """
    self._bandit(env_name).update(arm, final_return)

  def serialize(self) -> str:
    """JSON of every bandit's `get_state` and the generator's state."""
    return json.dumps({
        "bandits": {name: b.get_state() for name, b in self._bandits.items()},
        "rng": self._rng.bit_generator.state,
    })

  def deserialize(self, string_value: bytes) -> None:
    """Restores what `serialize` wrote, in place (held `Bandit`s stay valid).

    Everything is checked on copies first, so on error nothing changes.

    Raises:
      ValueError: if the saved state is for other environments or grids.
    """
    state = json.loads(string_value)
    saved = state["bandits"]
    if set(saved) != set(self._bandits):
      raise ValueError(f"Saved bandits are for {sorted(saved)}, this BanditSet "
                       f"has {sorted(self._bandits)}")
    for name, bandit in self._bandits.items():
      copy.deepcopy(bandit).set_state(saved[name])
    np.random.PCG64().state = state["rng"]
    for name, bandit in self._bandits.items():
      bandit.set_state(saved[name])
    self._rng.bit_generator.state = state["rng"]

  def lowest_return(self, env_name: str) -> float:
    """`Bandit.lowest_return` of `env_name`'s bandit."""
    return self._bandit(env_name).lowest_return

  def _bandit(self, env_name: str) -> Bandit:
    if env_name not in self._bandits:
      raise ValueError(f"No bandit for environment {env_name!r}; known: "
                       f"{', '.join(self._bandits)}")
    return self._bandits[env_name]
