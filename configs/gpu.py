"""The paper's meta-training set-up (configs/paper.py) scaled to one accelerator.

Everything per lifetime is the paper's (Table 2, Table 3, Appendix B.1): the 15
training environments, 64 environments per lifetime, 20-step trajectories,
K = 5, LSTM 256, m = 30, Adam 1e-4 on eta, Table 3 lifetimes and a budget of
10^10 environment steps. Only the number of lifetimes is scaled: 16 per
environment (240 lifetimes) instead of 64 (960), a quarter of the paper's.

Why a quarter. The meta-gradient keeps every activation of a window for the
backward pass: per environment stream, K x T = 100 steps of the agent's outputs
and of the LPG LSTM's gates and states (4 x 256 floats each, several copies),
of the order of 3 MB. The paper's 960 x 64 = 61,440 streams would need about
180 GB, more than one accelerator holds (the paper spread them over a 16-core
TPU-v2); 240 x 64 = 15,360 streams need about 45 GB, which leaves room on an
80 GB GPU for XLA's buffers. This is an estimate, not yet measured on a GPU:
if the benchmark (README "Benchmark") runs out of memory, halve
`population.lifetimes_per_env` (it must stay even, so that a grid world's
lifetimes split between its two action spaces). A meta-step then lives 240 x
6 x 20 x 64 = 1,843,200 environment steps (1,536,000 of them in the K inner
rollouts), so 10^10 steps are 5,425 meta-steps; the paper's 2 hours need
about 0.75 meta-steps/s.

  python launchers/benchmark.py --config=configs/gpu.py --mode=xla \
      --warmup_steps=1 --timed_steps=5
"""

import ml_collections

from configs import paper

LIFETIMES_PER_ENV = 16  # Table 2: 64; a quarter, to fit one accelerator.


def get_config() -> ml_collections.ConfigDict:
  config = paper.get_config()
  config.name = "gpu"
  config.population.lifetimes_per_env = LIFETIMES_PER_ENV
  return config
