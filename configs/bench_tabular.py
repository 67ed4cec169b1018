"""The speed benchmark shape of issue 4: 8 lifetimes on tabular grid worlds, 64
environments each, 20-step rollouts, K = 5, LSTM 256, m = 30."""

import ml_collections

from configs import cpu


def get_config() -> ml_collections.ConfigDict:
  config = cpu.get_config()
  config.name = "bench_tabular"
  config.population.envs = ("tabular/dense",)
  config.population.lifetimes_per_env = 8
  config.population.num_envs = 64
  config.population.lifetime_scale = 1.0
  config.rule.hidden_size = 256
  config.num_meta_steps = 20
  config.validation.every = 0  # The benchmark times meta-steps only.
  return config
