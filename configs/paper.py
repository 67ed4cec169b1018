"""The paper's meta-training set-up (Table 2, Table 3, Appendix B.1), for accelerators.

960 lifetimes over the 15 training environments (64 each), 64 environments per
lifetime, 20-step trajectories, K = 5, LSTM 256, m = 30, Adam 1e-4 on eta, Table 3
lifetimes, a budget of 10^10 environment steps.
"""

import ml_collections

from configs import cpu


def get_config() -> ml_collections.ConfigDict:
  config = cpu.get_config()
  config.name = "paper"
  config.population.envs = (
      "tabular/dense", "tabular/sparse", "tabular/long_horizon",
      "tabular/longer_horizon", "tabular/long_dense", "random/dense",
      "random/long_horizon", "random/small", "random/small_sparse",
      "random/very_dense", "chain/short", "chain/short_noisy", "chain/long",
      "chain/long_noisy", "chain/distractor")
  config.population.lifetimes_per_env = 64  # 15 x 64 = 960 lifetimes (Table 2).
  config.population.num_envs = 64
  config.population.lifetime_scale = 1.0
  config.rule.hidden_size = 256
  config.meta.learning_rate = 1e-4
  # Appendix B.1: ~10^10 steps in total; 7,372,800 per meta-step (960
  # lifetimes x (K + 1) x 20 x 64) give 1,356 meta-steps (lpg_tf.meta.run_length).
  config.num_meta_steps = None
  config.total_env_steps = 1e10
  config.checkpoint_every = 1000
  config.log_every = 100
  # 13 validations in the run; each trains 15 x 4 lifetimes for 10^6 steps
  # (6 x 10^7 steps, 8% of the 7.4 x 10^8 of 100 meta-steps; B x the longest
  # episode, 64 x 2000, is the least a validation lifetime needs).
  config.validation.every = 100
  config.validation.env_steps = 1_000_000
  config.validation.lifetimes = 4
  return config
