"""The preset of the LPG-V rule shipped in the package (`pretrained:lpg_v_cpu`).

Section 4.1's LPG-V baseline meta-trained on the same population as the shipped
LPG rule (configs/pretrained.py: the ten tabular-grid and delayed-chain
environments of Appendix A) for the meta-steps that rule's shipped eta had
seen (its best validation came at meta-step 1000), so that Figure 3
(`launchers/analyse.py --figure=3`) compares the two kinds of rule on one
budget. LPG-V learns pi_hat only; its agents' value is trained by
TD(rule.td_lambda). The y settings of pretrained.py (the y_hat head's stddev,
beta1 = beta3 = 0) do not apply to it.

Reproduce the shipped rule (2 CPU cores; the wall time is in
lpg_tf/rules/pretrained/lpg_v_cpu/MODEL_CARD.md):

  python launchers/tpu_meta_train.py --config=configs/pretrained_lpg_v.py \
      --workdir=runs/pretrained_lpg_v

The rule is the run's best_rule/ (the best validation score).
"""

import ml_collections

from configs import pretrained


def get_config() -> ml_collections.ConfigDict:
  config = pretrained.get_config()
  config.name = "pretrained_lpg_v"
  config.rule.kind = "lpg_v"
  config.rule.y_head_init_stddev = None
  config.num_meta_steps = 1000
  return config
