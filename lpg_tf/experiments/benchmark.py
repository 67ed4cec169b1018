"""Meta-training throughput: compile time, meta-steps/s, environment steps/s, memory.

`measure` builds the meta-trainer of a config, times its first meta-step (tracing
and XLA compilation), runs warm-up steps, then times further steps. It also
reports the time from the process's launch to the end of the first meta-step
(imports, building the population and the first meta-step together): how long
a run makes its user wait before it meta-trains. Inner-loop environment steps
(the K rollouts that drive the agent updates) and the scoring rollouts of
Eq. 4 are reported separately. With `config.meta.optimiser='es'`
the environment steps are every ES member's agents' (the centre's included),
and there are no scoring rollouts. Peak memory is the process's peak
resident set size (compilation included), so each mode is best measured in a
fresh process; steady memory is the resident set after the timed steps. On a
GPU the device's peak memory (TensorFlow's allocator) is reported as well, and
`peak_memory_mb` is that one; on a CPU it is the peak resident set.

`hours_for_budget` projects the wall time of Appendix B.1's 10^10 environment
steps from the measured rate, counting every environment step of a meta-step
(inner and scoring rollouts), as the run's budget does (`meta.run_length`).
"""

import math
import os
import resource
import time
from typing import Dict

from absl import logging
import ml_collections
import tensorflow as tf

from lpg_tf.experiments import meta_train

PAPER_ENV_STEPS = 1e10  # Appendix B.1: "approximately 10^10 steps" in total.


def peak_rss_mb() -> float:
  """Peak resident set size of this process, MiB (Linux reports KiB)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def seconds_since_launch() -> float:
  """Wall seconds since this process started (from /proc on Linux)."""
  with open("/proc/self/stat") as stat:
    # Fields after the command's closing parenthesis; starttime is field 22.
    fields = stat.read().rsplit(")", 1)[1].split()
  started = int(fields[19]) / os.sysconf("SC_CLK_TCK")
  with open("/proc/uptime") as uptime:
    return float(uptime.read().split()[0]) - started


def current_rss_mb() -> float:
  """Resident set size of this process now, MiB (from /proc on Linux)."""
  with open("/proc/self/status") as status:
    for line in status:
      if line.startswith("VmRSS:"):
        return float(line.split()[1]) / 1024.0
  return float("nan")


def device_peak_memory_mb() -> float:
  """Peak memory TensorFlow allocated on the first GPU, MiB; NaN without one."""
  if not tf.config.list_logical_devices("GPU"):
    return float("nan")
  return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2.0**20


def hours_for_budget(env_steps_per_s: float,
                     total_env_steps: float = PAPER_ENV_STEPS) -> float:
  """Hours to live `total_env_steps` environment steps at `env_steps_per_s`."""
  if not env_steps_per_s > 0:
    raise ValueError(f"env_steps_per_s must be > 0, got {env_steps_per_s}")
  return total_env_steps / env_steps_per_s / 3600.0


def measure(config: ml_collections.ConfigDict, jit_compile: bool,
            warmup_steps: int = 2, timed_steps: int = 10) -> Dict[str, float]:
  """Times meta-steps of `config` with or without XLA; returns the figures."""
  meta_train.validate(config)
  tf.random.set_seed(config.seed)
  start = time.perf_counter()
  trainer = meta_train.build_trainer(config, meta_train.build_rule(config),
                                     jit_compile=jit_compile)
  build_s = time.perf_counter() - start
  start = time.perf_counter()
  trainer.step()
  compile_s = time.perf_counter() - start
  launch_to_first_step_s = seconds_since_launch()
  # A large population's first meta-step takes minutes: say so before the
  # timed steps.
  logging.info("First meta-step done %.1f s after launch (build %.1f s, "
               "first meta-step %.1f s); peak RSS so far %.0f MiB",
               launch_to_first_step_s, build_s, compile_s, peak_rss_mb())
  for _ in range(warmup_steps):
    trainer.step()
  start, cpu_start = time.perf_counter(), time.process_time()
  for _ in range(timed_steps):
    trainer.step()
  elapsed = time.perf_counter() - start
  cpu_s = time.process_time() - cpu_start
  meta_steps_per_s = timed_steps / elapsed
  all_env_steps_per_s = meta_steps_per_s * (
      trainer.inner_env_steps_per_step + trainer.scoring_env_steps_per_step)
  device_peak_mb = device_peak_memory_mb()
  return {
      "optimiser": config.meta.optimiser,
      "groups_per_program": config.population.groups_per_program,
      "jit_compile": float(jit_compile),
      "build_s": build_s,
      "compile_s": compile_s,
      "launch_to_first_step_s": launch_to_first_step_s,
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
      "device_peak_mb": device_peak_mb,
      # The device's peak on a GPU, else the process's.
      "peak_memory_mb": (peak_rss_mb() if math.isnan(device_peak_mb)
                         else device_peak_mb),
      "hours_for_1e10_env_steps": hours_for_budget(all_env_steps_per_s),
  }
