"""The preset of the pretrained rule shipped in the package (`--rule=pretrained`).

The CPU preset (configs/cpu.py) widened to the ten tabular-grid and delayed-chain
environments of Appendix A, with the two settings that keep the prediction
vector y alive at this scale (issue 12's experiments, README "Meta-training"):

  * the y_hat head starts with weights of stddev 3 instead of Sonnet's
    1/sqrt(hidden), so y_hat differs across states from the first meta-step;
  * no entropy (beta1) or L2 (beta3) regulariser on y: at 20 lifetimes their
    deterministic pull toward a uniform y_hat outweighs the noisy return signal
    (with Table 2's 1e-3 each, H(y) stays at ln 30 for a whole run).

Reproduce the shipped rule (2 CPU cores; the wall time is in
lpg_tf/rules/pretrained/lpg_cpu/MODEL_CARD.md):

  python launchers/tpu_meta_train.py --config=configs/pretrained.py \
      --workdir=runs/pretrained

The rule is the run's best_rule/ (the best validation score).
"""

import ml_collections

from configs import cpu


def get_config() -> ml_collections.ConfigDict:
  config = cpu.get_config()
  config.name = "pretrained"
  config.population.envs = (
      "tabular/dense", "tabular/sparse", "tabular/long_horizon",
      "tabular/longer_horizon", "tabular/long_dense", "chain/short",
      "chain/short_noisy", "chain/long", "chain/long_noisy", "chain/distractor")
  config.rule.y_head_init_stddev = 3.0
  config.meta.prediction_entropy_cost = 0.0
  config.meta.y_hat_l2_cost = 0.0
  config.num_meta_steps = 3000
  config.checkpoint_every = 250
  config.log_every = 50
  config.validation.every = 250
  config.validation.env_steps = 64_000
  return config
