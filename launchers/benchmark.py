"""Benchmark meta-training throughput, with XLA and without.

  python launchers/benchmark.py                                   # configs/cpu.py
  python launchers/benchmark.py --config=configs/bench_tabular.py
  python launchers/benchmark.py --config=configs/bench_tabular.py --config.meta.optimiser=es
  python launchers/benchmark.py --config=configs/gpu.py --mode=xla --warmup_steps=1 --timed_steps=5
  python launchers/benchmark.py --config=configs/appendix_a.py --mode=xla --timed_steps=20

Each mode runs in a fresh process (so peak memory is its own). Prints the time
from the process's launch to its first meta-step (with the population's build
and the first meta-step's compile time), meta-steps/s, inner-loop and scoring
environment steps/s, peak memory (the device's on a GPU, else the process's
resident set) and the projected hours for 10^10 environment steps for each,
and as its last line one JSON object with env_steps_per_s, meta_steps_per_s,
launch_to_first_step_s, peak_rss_mb (XLA) and env_steps_per_s_no_xla. --mode=xla or --mode=no_xla runs that mode alone, in
this process, and prints its line and its JSON object. With
--config.meta.optimiser=es the environment steps are those of every ES member's
agents (ES agent environment steps/s) and a meta-step is an ES step.
"""

import json
import math
import os
import subprocess
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from lpg_tf.experiments import benchmark

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(_REPO, "configs", "cpu.py"), "Config to benchmark.")
_WARMUP = flags.DEFINE_integer("warmup_steps", 2, "Meta-steps after compilation before timing.")
_STEPS = flags.DEFINE_integer("timed_steps", 10, "Meta-steps timed.")
_MODE = flags.DEFINE_enum("mode", "both", ["both", "xla", "no_xla"],
                          "both: run each mode in a subprocess and summarise.")


def _child(mode: str) -> dict:
  """Runs this launcher for one mode in a fresh process; returns its figures."""
  argv = [a for a in sys.argv[1:] if not a.startswith("--mode")]
  result = subprocess.run([sys.executable, os.path.abspath(__file__), *argv,
                           f"--mode={mode}"], capture_output=True, text=True,
                          check=False)
  if result.returncode:
    raise RuntimeError(f"benchmark mode {mode} failed:\n{result.stderr[-4000:]}")
  return json.loads(result.stdout.strip().splitlines()[-1])


def _line(mode: str, figures: dict, es: bool) -> str:
  """One mode's figures, for people."""
  memory = "peak RSS" if math.isnan(figures["device_peak_mb"]) else "device peak"
  return (f"[{mode}] first meta-step {figures['launch_to_first_step_s']:.0f}s "
          f"after launch (build {figures['build_s']:.1f}s, compile "
          f"{figures['compile_s']:.1f}s) | "
          f"{figures['meta_steps_per_s']:.3f} meta-steps/s | "
          f"{figures['env_steps_per_s']:,.0f} "
          f"{'ES agent' if es else 'inner'} env steps/s | "
          f"{figures['scoring_env_steps_per_s']:,.0f} scoring env steps/s | "
          f"{memory} {figures['peak_memory_mb']:.0f} MiB "
          f"(RSS peak {figures['peak_rss_mb']:.0f}, steady "
          f"{figures['steady_rss_mb']:.0f} MiB) | "
          f"{figures['hours_for_1e10_env_steps']:.1f} h for 1e10 env steps")


def main(argv):
  del argv
  config = _CONFIG.value
  es = config.meta.optimiser == "es"
  if _MODE.value != "both":
    figures = benchmark.measure(config, _MODE.value == "xla", _WARMUP.value,
                                _STEPS.value)
    print(_line(_MODE.value, figures, es), flush=True)
    print(json.dumps(figures), flush=True)
    return
  optimiser = config.meta.optimiser
  if optimiser == "es":
    optimiser += (f" (P={config.meta.es.population_size}, "
                  f"window={config.meta.es.window})")
  print(f"config {config.name}: envs {list(config.population.envs)}, "
        f"{config.population.lifetimes_per_env} lifetimes/env, "
        f"optimiser {optimiser}, B={config.population.num_envs}, T={config.population.unroll_length}, "
        f"K={config.population.num_inner_updates}, LSTM {config.rule.hidden_size}, "
        f"m={config.population.prediction_size}, groups per program "
        f"{config.population.groups_per_program or 'all'}", flush=True)
  results = {}
  for mode in ("xla", "no_xla"):
    figures = _child(mode)
    results[mode] = figures
    print(_line(mode, figures, es), flush=True)
  summary = {
      "config": config.name,
      "optimiser": config.meta.optimiser,
      "env_steps_per_s": results["xla"]["env_steps_per_s"],
      "meta_steps_per_s": results["xla"]["meta_steps_per_s"],
      "scoring_env_steps_per_s": results["xla"]["scoring_env_steps_per_s"],
      "compile_s": results["xla"]["compile_s"],
      "launch_to_first_step_s": results["xla"]["launch_to_first_step_s"],
      "peak_rss_mb": results["xla"]["peak_rss_mb"],
      "steady_rss_mb": results["xla"]["steady_rss_mb"],
      "env_steps_per_s_no_xla": results["no_xla"]["env_steps_per_s"],
      "meta_steps_per_s_no_xla": results["no_xla"]["meta_steps_per_s"],
      "peak_rss_mb_no_xla": results["no_xla"]["peak_rss_mb"],
      "peak_memory_mb": results["xla"]["peak_memory_mb"],
      "hours_for_1e10_env_steps": results["xla"]["hours_for_1e10_env_steps"],
  }
  print(json.dumps(summary), flush=True)


if __name__ == "__main__":
  app.run(main)
