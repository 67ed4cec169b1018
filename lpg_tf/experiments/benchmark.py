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

`measure` also counts the meta-step's matmul FLOPs from the HLO of its
programs (`hlo_flops`; without XLA, of the same step lowered for XLA: the same
operations), gives the rate the timed steps achieved, and sets it beside the
rate of one large dense matmul measured in the same process
(`dense_matmul_flops_per_s`): how close the meta-step comes to what this
machine's cores can do on dense matmuls.

`hours_for_budget` projects the wall time of Appendix B.1's 10^10 environment
steps from the measured rate, counting every environment step of a meta-step
(inner and scoring rollouts), as the run's budget does (`meta.run_length`).
"""

import math
import os
import resource
import time
from typing import Dict, List, Sequence, Tuple

from absl import logging
import ml_collections
import tensorflow as tf

from lpg_tf.experiments import hlo_flops
from lpg_tf.experiments import meta_train
from lpg_tf.meta import trainer as trainer_lib

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


def dense_matmul_flops_per_s(size: int = 2048, repetitions: int = 10) -> float:
  """FLOP/s of a float32 `[size, size] @ [size, size]` matmul: the faster of
  XLA's kernel and TensorFlow's own (oneDNN on x86), each the median of
  `repetitions` timed runs after one to compile. The rate this machine's cores
  reach on the kind of work the meta-step's FLOPs count, whichever runtime the
  meta-step runs on."""
  a = tf.random.normal([size, size], seed=1)
  b = tf.random.normal([size, size], seed=2)
  rates = []
  for jit_compile in (True, False):
    matmul = tf.function(lambda a, b: a @ b, jit_compile=jit_compile)
    matmul(a, b).numpy()
    seconds = []
    for _ in range(repetitions):
      start = time.perf_counter()
      matmul(a, b).numpy()
      seconds.append(time.perf_counter() - start)
    rates.append(2.0 * size**3 / sorted(seconds)[len(seconds) // 2])
  return max(rates)


def meta_step_flops(trainer: object) -> float:
  """Matmul FLOPs of one meta-step of `trainer`, counted from its programs'
  HLO; NaN (with the reason logged) where they cannot be counted: several
  replicas, a trainer that is not the meta-gradient's, or a step that XLA
  cannot lower."""
  if not isinstance(trainer, trainer_lib.MetaTrainer):
    logging.info("FLOPs are counted for the meta-gradient's trainer only")
    return float("nan")
  try:
    return sum(hlo_flops.matmul_flops(hlo) for hlo in trainer.program_hlo())
  except (ValueError, tf.errors.OpError) as error:
    logging.warning("Meta-step FLOPs not counted: %s", error)
    return float("nan")


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
  peak_mb, steady_mb = peak_rss_mb(), current_rss_mb()
  # After the memory figures: lowering the programs to HLO takes memory too.
  step_flops = meta_step_flops(trainer)
  matmul_flops_per_s = dense_matmul_flops_per_s()
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
      "peak_rss_mb": peak_mb,
      "steady_rss_mb": steady_mb,
      "device_peak_mb": device_peak_mb,
      # The device's peak on a GPU, else the process's.
      "peak_memory_mb": peak_mb if math.isnan(device_peak_mb) else device_peak_mb,
      "hours_for_1e10_env_steps": hours_for_budget(all_env_steps_per_s),
      "meta_step_gflop": step_flops / 1e9,
      "achieved_gflop_per_s": step_flops * meta_steps_per_s / 1e9,
      "dense_matmul_gflop_per_s": matmul_flops_per_s / 1e9,
      "share_of_dense_matmul": (step_flops * meta_steps_per_s
                                / matmul_flops_per_s),
  }


def scaling_settings(lifetimes_per_env: Sequence[int],
                     inner_updates: Sequence[int], base_lifetimes_per_env: int,
                     base_inner_updates: int) -> List[Tuple[int, int]]:
  """(lifetimes per environment, K) of a scaling sweep: each lifetime count
  at the config's K, then each other K at the config's lifetime count, so
  that each series varies one thing."""
  settings = [(n, base_inner_updates) for n in lifetimes_per_env]
  settings += [(base_lifetimes_per_env, k) for k in inner_updates
               if (base_lifetimes_per_env, k) not in settings]
  return settings


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> Tuple[float, float]:
  """Least-squares slope and intercept of ys against xs (at least two
  distinct xs): how a figure grows per lifetime or per inner update."""
  if len(set(xs)) < 2:
    raise ValueError(f"a fit needs two distinct x values, got {list(xs)}")
  mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
  slope = (sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys))
           / sum((x - mean_x) ** 2 for x in xs))
  return slope, mean_y - slope * mean_x

