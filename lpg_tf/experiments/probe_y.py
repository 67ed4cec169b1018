"""The policy-evaluation probe of an exported rule's y; writes probe.json and
probe.png.

The library side of `launchers/probe_y.py`: checks every argument before any
work, loads the rule (an exported LPG rule's directory or a rule shipped with
the package, `pretrained[:NAME]`, as a `SavedModelRule`),
builds a freshly initialised LPG of the same sizes as the untrained reference,
draws the grid's instance from the seed, runs `y_probe.probe` and writes its
numbers (`y_probe.write_json`) and maps (`y_pictures.plot_probe`) into the work
directory.
"""

import os
from typing import Optional

from absl import logging
import numpy as np
import tensorflow as tf

from lpg_tf import envs
from lpg_tf import errors
from lpg_tf.analysis import value_regression
from lpg_tf.analysis import y_pictures
from lpg_tf.analysis import y_probe
from lpg_tf.envs import registry
from lpg_tf.experiments import agent_runs
from lpg_tf.meta import lifetime_settings
from lpg_tf.rules import lpg
from lpg_tf.rules import pretrained
from lpg_tf.rules import saved_model

JSON_NAME = "probe.json"
OUTPUTS = (JSON_NAME, y_pictures.PNG_NAME)
DEFAULT_GAMMA = 0.99  # Table 2 samples gamma from {0.99, 0.995}.
# Updates of T x B = 1280 steps per policy: 1.3 M environment steps, about
# 700 visits of each of tabular/dense's 1936 states under the uniform policy.
DEFAULT_NUM_UPDATES = 1000
DEFAULT_TEMPERATURE = y_probe.NEAR_OPTIMAL_TEMPERATURE
DEFAULT_MIN_VISITS = y_probe.MIN_VISITS


def _check_arguments(env_name: str, workdir: str, gamma: float,
                     num_updates: int, num_envs: int, unroll_length: int,
                     learning_rate: Optional[float], kl_cost: Optional[float],
                     temperature: float, min_visits: int,
                     overwrite: bool) -> None:
  """ConfigError for any bad argument, before any work."""
  if env_name not in envs.NAMES:
    raise errors.ConfigError(
        f"Unknown --env {env_name!r}; valid: "
        f"{', '.join(n for n in envs.NAMES if n.startswith(registry.TABULAR_PREFIX))}")
  if not env_name.startswith(registry.TABULAR_PREFIX):
    raise errors.ConfigError(
        f"--env {env_name} is not a tabular grid world: the probe needs the "
        "exact values of a grid whose states are indices; valid: "
        f"{', '.join(n for n in envs.NAMES if n.startswith(registry.TABULAR_PREFIX))}")
  if not 0.0 < gamma < 1.0:
    raise errors.ConfigError(f"--gamma must be in (0, 1), got {gamma!r}")
  for name, value in (("num_updates", num_updates), ("num_envs", num_envs),
                      ("unroll_length", unroll_length),
                      ("min_visits", min_visits)):
    if value is None or value <= 0:
      raise errors.ConfigError(
          f"--{name} must be a positive integer, got {value!r}")
  if learning_rate is not None and not learning_rate > 0:
    raise errors.ConfigError(
        f"--learning_rate must be > 0, got {learning_rate!r}")
  if kl_cost is not None and not kl_cost > 0:
    raise errors.ConfigError(
        f"--kl_cost must be > 0 (y moves only through it), got {kl_cost!r}")
  if not temperature > 0:
    raise errors.ConfigError(f"--temperature must be > 0, got {temperature!r}")
  if not workdir:
    raise errors.ConfigError("--workdir is required")
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise errors.ConfigError(
        f"--workdir {workdir!r} exists and is not a directory")
  existing = [n for n in OUTPUTS if os.path.exists(os.path.join(workdir, n))]
  if existing and not overwrite:
    raise errors.ConfigError(
        f"--workdir {workdir!r} already holds {existing}; choose a new "
        "directory, or pass --overwrite to replace that probe")


def load_rules(rule_path: str, seed: int):
  """(the exported rule, a freshly initialised LPG of its sizes).

  Args:
    rule_path: an exported rule's directory, or `pretrained[:NAME]`.
    seed: seed of the fresh LPG's initialisation.

  Raises:
    errors.ConfigError: `rule_path` is not an exported LPG rule.
  """
  if rule_path:
    rule_path = pretrained.export_directory(rule_path)
  if not rule_path or not os.path.isdir(rule_path):
    raise errors.ConfigError(
        f"--rule {rule_path!r} is not a directory: give an exported rule "
        "(SavedModel, e.g. <meta-train workdir>/rule)")
  metadata = saved_model.read_metadata(rule_path)
  if metadata.kind != lpg.KIND or not metadata.y_softmax:
    raise errors.ConfigError(
        f"--rule {rule_path!r} is an {metadata.kind} rule with "
        f"y_softmax={metadata.y_softmax}: the probe reads y as a softmax "
        "prediction vector, which only LPG with y_softmax has")
  rule = saved_model.SavedModelRule(rule_path)
  tf.random.set_seed(seed)
  untrained = lpg.LPG(hidden_size=metadata.hidden_size,
                      prediction_size=metadata.prediction_size,
                      embedding_sizes=metadata.embedding_sizes,
                      use_baseline=metadata.use_baseline)
  untrained.build()
  return rule, untrained


def probe_y(rule_path: str, env_name: str, workdir: str, *,
            action_space: Optional[str] = None,
            gamma: float = DEFAULT_GAMMA,
            num_updates: int = DEFAULT_NUM_UPDATES, num_envs: int = 64,
            unroll_length: int = 20, learning_rate: Optional[float] = None,
            kl_cost: Optional[float] = None,
            temperature: float = DEFAULT_TEMPERATURE,
            min_visits: int = DEFAULT_MIN_VISITS, seed: int = 0,
            overwrite: bool = False,
            jit_compile: bool = True) -> y_probe.ProbeResult:
  """Probes the exported rule at `rule_path` on `env_name`; writes
  probe.json and probe.png into `workdir`.

  Args:
    rule_path: an exported LPG rule's directory, or a rule shipped with the
      package (`pretrained` or `pretrained:NAME`).
    env_name: a tabular grid world, e.g. "tabular/dense".
    workdir: where the outputs go (created if missing).
    action_space: envs.MOVE (default) or envs.MOVE_AND_COLLECT; Section 4.3
      probes an action space the rule was not meta-trained on.
    gamma: discount factor of the updates and of the true values.
    num_updates: updates of T x B steps per policy and rule.
    num_envs, unroll_length: B and T.
    learning_rate, kl_cost: the agent's alpha_lr and alpha_y; default: a
      shipped rule's own for the environment (its hyperparameters.json), else
      the middle of Table 3's grids for the environment.
    temperature: of the near-optimal policy softmax(Q* / temperature).
    min_visits: states visited fewer times are left out of the statistics.
    seed: seed of the instance, the untrained rule, y's initialisation,
      episodes, actions and the held-out split.
    overwrite: replace a probe already in `workdir`.
    jit_compile: compile the updates with XLA.

  Raises:
    errors.ConfigError: for any bad argument, before any work.
  """
  _check_arguments(env_name, workdir, gamma, num_updates, num_envs,
                   unroll_length, learning_rate, kl_cost, temperature,
                   min_visits, overwrite)
  env = envs.make(env_name, action_space)
  rule, untrained = load_rules(rule_path, seed)
  learning_rate, kl_cost = agent_runs.rule_hyperparameters(
      rule_path, env_name, learning_rate, kl_cost)
  settings = lifetime_settings.for_env(env_name)
  learning_rate = (settings.default_learning_rate if learning_rate is None
                   else learning_rate)
  kl_cost = settings.default_kl_cost if kl_cost is None else kl_cost
  instance = env.sample_instances(tf.constant([seed, 0], tf.int32), 1)
  instance = np.asarray(instance)[0]
  logging.info("Probing y of %s on %s (%s), instance %s: %d updates of %d x "
               "%d steps per policy (alpha_lr=%g, alpha_y=%g, gamma=%g)",
               rule_path, env_name, env.spec.action_space, instance.tolist(),
               num_updates, unroll_length, num_envs, learning_rate, kl_cost,
               gamma)
  probe = y_probe.probe(rule, untrained, env, instance, gamma, num_updates,
                        learning_rate=learning_rate, kl_cost=kl_cost,
                        num_envs=num_envs, unroll_length=unroll_length,
                        temperature=temperature, min_visits=min_visits,
                        seed=seed, jit_compile=jit_compile)
  os.makedirs(workdir, exist_ok=True)
  json_path = y_probe.write_json(probe.result,
                                 os.path.join(workdir, JSON_NAME))
  png_path = y_pictures.plot_probe(
      probe, os.path.join(workdir, y_pictures.PNG_NAME))
  for policy in probe.result.policies:
    logging.info(
        "%s policy, %d states: H(y) %.3f (ln m %.3f), spread %.3f, best |r| "
        "%.3f, %d components |r| > %g, held-out R^2 %.3f | untrained rule: "
        "H(y) %.3f, best |r| %.3f, R^2 %.3f | TD: r %.3f, R^2 %.3f",
        policy.policy, policy.states, policy.rule.entropy,
        probe.result.max_entropy, policy.rule.spread,
        policy.rule.best_abs_correlation,
        policy.rule.num_correlated_components,
        value_regression.CORRELATION_THRESHOLD, policy.rule.held_out_r2,
        policy.untrained_rule.entropy,
        policy.untrained_rule.best_abs_correlation,
        policy.untrained_rule.held_out_r2, policy.td.correlation,
        policy.td.held_out_r2)
  logging.info("Wrote %s and %s", json_path, png_path)
  return probe.result
