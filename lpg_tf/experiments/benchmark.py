"""Meta-training throughput: compile time, meta-steps/s, environment steps/s, memory.

`measure` builds the meta-trainer of a config, times its first meta-step (tracing
and XLA compilation), runs warm-up steps, then times further steps. Inner-loop
environment steps (the K rollouts that drive the agent updates) and the scoring
rollouts of Eq. 4 are reported separately. With `config.meta.optimiser='es'`
the environment steps are every ES member's agents' (the centre's included),
and there are no scoring rollouts. Peak memory is the process's peak
resident set size (compilation included), so each mode is best measured in a
fresh process; steady memory is the resident set after the timed steps.
"""

import resource
import time
from typing import Dict

import ml_collections
import tensorflow as tf

from lpg_tf.experiments import meta_train


def peak_rss_mb() -> float:
  """Peak resident set size of this process, MiB (Linux reports KiB)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float:
  """Resident set size of this process now, MiB (from /proc on Linux)."""
  with open("/proc/self/status") as status:
    for line in status:
      if line.startswith("VmRSS:"):
        return float(line.split()[1]) / 1024.0
  return float("nan")


def measure(config: ml_collections.ConfigDict, jit_compile: bool,
            warmup_steps: int = 2, timed_steps: int = 10) -> Dict[str, float]:
  """Times meta-steps of `config` with or without XLA; returns the figures."""
  meta_train.validate(config)
  tf.random.set_seed(config.seed)
  trainer = meta_train.build_trainer(config, meta_train.build_rule(config),
                                     jit_compile=jit_compile)
  start = time.perf_counter()
  trainer.step()
  compile_s = time.perf_counter() - start
  for _ in range(warmup_steps):
    trainer.step()
  start, cpu_start = time.perf_counter(), time.process_time()
  for _ in range(timed_steps):
    trainer.step()
  elapsed = time.perf_counter() - start
  cpu_s = time.process_time() - cpu_start
  meta_steps_per_s = timed_steps / elapsed
  return {
      "optimiser": config.meta.optimiser,
      "jit_compile": float(jit_compile),
      "compile_s": compile_s,
      "meta_steps_per_s": meta_steps_per_s,
      "env_steps_per_s": meta_steps_per_s * trainer.inner_env_steps_per_step,
      "scoring_env_steps_per_s": (meta_steps_per_s
                                  * trainer.scoring_env_steps_per_step),
      "inner_env_steps_per_meta_step": float(trainer.inner_env_steps_per_step),
      "lifetimes": float(trainer.population.num_lifetimes),
      # CPU seconds this process got per wall second while timed (2.0 is
      # both cores of a 2-core machine): under 2 when other jobs share it.
      "cpu_share": cpu_s / elapsed,
      "peak_rss_mb": peak_rss_mb(),
      "steady_rss_mb": current_rss_mb(),
  }
