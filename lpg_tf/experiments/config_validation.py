"""Range checks for every value of a meta-training config (configs/cpu.py's keys).

`check` raises `errors.ConfigError` naming the first bad value, with its
allowed range, or the first combination of values that has no meaning
(`COMBINATIONS`), before anything is written: a config that passes can only
fail later for reasons outside the config (disk, signals, divergence).
"""

import math
from typing import Any, Callable, Dict, Tuple

import ml_collections

from lpg_tf import errors

Check = Tuple[str, Callable[[Any], bool]]


def _number(value: Any) -> bool:
  return (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value))


def _int(value: Any) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


POSITIVE_INT: Check = ("a positive integer", lambda v: _int(v) and v > 0)
NON_NEGATIVE_INT: Check = ("a non-negative integer", lambda v: _int(v) and v >= 0)
POSITIVE: Check = ("a finite number > 0", lambda v: _number(v) and v > 0)
NON_NEGATIVE: Check = ("a finite number >= 0", lambda v: _number(v) and v >= 0)
UNIT_INTERVAL: Check = ("a number in [0, 1]", lambda v: _number(v) and 0 <= v <= 1)
BOOL: Check = ("True or False", lambda v: isinstance(v, bool))
NAME: Check = ("a non-empty string", lambda v: isinstance(v, str) and bool(v))
POSITIVE_INTS: Check = ("a non-empty sequence of positive integers",
                        lambda v: isinstance(v, (tuple, list)) and bool(v)
                        and all(_int(x) and x > 0 for x in v))


def one_of(*values: str) -> Check:
  """One of the strings `values`."""
  return (f"one of {', '.join(map(repr, values))}", lambda v: v in values)


def optional(check: Check) -> Check:
  """`check`, or None (a value that another key replaces, e.g. a run length)."""
  allowed, is_valid = check
  return (f"None or {allowed}", lambda v: v is None or is_valid(v))


NAMES: Check = ("a non-empty sequence of environment names",
                lambda v: isinstance(v, (tuple, list)) and bool(v)
                and all(isinstance(x, str) for x in v))

# Every key a meta-training config has, and what it may hold.
SCHEMA: Dict[str, Check] = {
    "name": NAME,
    "seed": NON_NEGATIVE_INT,
    "strategy": NAME,
    "cpu_devices": POSITIVE_INT,
    "jit_compile": BOOL,
    "population.envs": NAMES,
    "population.lifetimes_per_env": POSITIVE_INT,
    "population.num_envs": POSITIVE_INT,
    "population.unroll_length": POSITIVE_INT,
    "population.num_inner_updates": POSITIVE_INT,
    "population.prediction_size": POSITIVE_INT,
    "population.lifetime_scale": POSITIVE,
    "population.shards": POSITIVE_INT,
    # 0: the meta-step is one compiled program (lpg_tf.meta.trainer).
    "population.groups_per_program": NON_NEGATIVE_INT,
    "population.concurrent_programs": BOOL,
    "population.sampled_action_spaces": BOOL,
    "rule.hidden_size": POSITIVE_INT,
    "rule.embedding_sizes": POSITIVE_INTS,
    "rule.use_baseline": BOOL,
    "rule.y_head_init_stddev": optional(POSITIVE),
    "rule.kind": one_of("lpg", "lpg_v"),
    "rule.y_softmax": BOOL,
    "rule.td_lambda": UNIT_INTERVAL,
    "meta.learning_rate": POSITIVE,
    "meta.prediction_entropy_cost": NON_NEGATIVE,
    "meta.pi_hat_l2_cost": NON_NEGATIVE,
    "meta.y_hat_l2_cost": NON_NEGATIVE,
    "meta.advantage_lambda": UNIT_INTERVAL,
    "meta.bandit_temperature": POSITIVE,
    "meta.bandit_exploration_bonus": NON_NEGATIVE,
    "meta.bandit_window": POSITIVE_INT,
    "meta.entropy_reset_threshold": NON_NEGATIVE,
    "meta.critic_learning_rate": POSITIVE,
    "meta.max_grad_norm": optional(NON_NEGATIVE),
    "meta.rematerialise_inner_updates": BOOL,
    "meta.bandit": BOOL,
    "meta.optimiser": one_of("gradient", "es", "hybrid"),
    # Evolution strategies (lpg_tf.meta.es_trainer.check_spec checks the rest:
    # an even population, a window of 2 updates up to a lifetime).
    "meta.es.population_size": POSITIVE_INT,
    "meta.es.sigma": POSITIVE,
    "meta.es.window": POSITIVE_INT,
    # meta.optimiser='hybrid': every es_every-th meta-step is an ES step.
    "meta.hybrid.es_every": POSITIVE_INT,
    # Exactly one of the two is set (lpg_tf.meta.run_length checks it).
    "num_meta_steps": optional(POSITIVE_INT),
    "total_env_steps": optional(POSITIVE),
    "checkpoint_every": POSITIVE_INT,
    "log_every": POSITIVE_INT,
    "max_nonfinite_steps": POSITIVE_INT,
    # Periodic validation of eta (lpg_tf.meta.validation); every = 0 is off.
    "validation.every": NON_NEGATIVE_INT,
    "validation.env_steps": POSITIVE_INT,
    "validation.lifetimes": POSITIVE_INT,
}


# Values that are each in range but mean nothing together: (applies, message).
COMBINATIONS: Tuple[Tuple[Callable[[Dict[str, Any]], bool], str], ...] = (
    (lambda c: not c["rule.y_softmax"] and c["rule.kind"] == "lpg"
     and c["meta.prediction_entropy_cost"] > 0,
     "config.rule.y_softmax=False makes y a vector in R^m, which has no "
     "entropy: config.meta.prediction_entropy_cost (beta1 of Eq. 4, H(y)) must "
     "be 0 with it (--config.meta.prediction_entropy_cost=0)"),
    (lambda c: c["rule.kind"] == "lpg_v"
     and c["rule.y_head_init_stddev"] is not None,
     "config.rule.y_head_init_stddev initialises LPG's y_hat head; LPG-V "
     "(config.rule.kind='lpg_v') has none: leave it None"),
    (lambda c: c["cpu_devices"] > 1 and c["strategy"] != "auto",
     "config.cpu_devices > 1 replicates over logical CPU devices, which needs "
     "config.strategy='auto' (--config.strategy=auto)"),
    (lambda c: c["population.shards"] % c["cpu_devices"],
     "config.population.shards cannot be split evenly over config.cpu_devices "
     "replicas: set --config.population.shards to a multiple of cpu_devices "
     "(and population.lifetimes_per_env to a multiple of shards)"),
    (lambda c: c["meta.optimiser"] in ("es", "hybrid")
     and c["total_env_steps"] is not None,
     "config.total_env_steps counts the meta-gradient's environment steps; "
     "with config.meta.optimiser='es' or 'hybrid' give config.num_meta_steps "
     "instead"),
    (lambda c: c["meta.optimiser"] == "es"
     and c["population.groups_per_program"] > 0,
     "config.population.groups_per_program cuts the meta-gradient's step into "
     "several programs; ES evaluates its members in one program: leave "
     "config.population.groups_per_program at 0 with "
     "config.meta.optimiser='es'"),
)


def _flatten(config: ml_collections.ConfigDict, prefix: str = "") -> Dict[str, Any]:
  flat = {}
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      flat.update(_flatten(value, f"{prefix}{key}."))
    else:
      flat[f"{prefix}{key}"] = value
  return flat


def check(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError for an unknown, missing or out-of-range config value."""
  flat = _flatten(config)
  unknown = sorted(set(flat) - set(SCHEMA))
  if unknown:
    raise errors.ConfigError(
        f"Unknown config key(s) {', '.join('config.' + k for k in unknown)}; "
        f"valid: {', '.join(SCHEMA)}")
  missing = sorted(set(SCHEMA) - set(flat))
  if missing:
    raise errors.ConfigError(
        f"The config lacks {', '.join('config.' + k for k in missing)}")
  for key, (allowed, is_valid) in SCHEMA.items():
    if not is_valid(flat[key]):
      raise errors.ConfigError(f"config.{key} must be {allowed}, got {flat[key]!r}")
  for applies, message in COMBINATIONS:
    if applies(flat):
      raise errors.ConfigError(message)
