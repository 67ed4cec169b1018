"""Benchmark meta-training throughput, with XLA and without.

  python launchers/benchmark.py                                   # configs/cpu.py
  python launchers/benchmark.py --config=configs/bench_tabular.py
  python launchers/benchmark.py --config=configs/bench_tabular.py --config.meta.optimiser=es
  python launchers/benchmark.py --config=configs/gpu.py --mode=xla --warmup_steps=1 --timed_steps=5
  python launchers/benchmark.py --config=configs/appendix_a.py --mode=no_xla --timed_steps=20
  python launchers/benchmark.py --config=configs/bench_tabular.py \
      --sweep_lifetimes_per_env=8,16,32 --sweep_inner_updates=1,5,10

Each mode runs in a fresh process (so peak memory is its own). Prints the time
from the process's launch to its first meta-step (with the population's build
and the first meta-step's compile time), meta-steps/s, inner-loop and scoring
environment steps/s, peak memory (the device's on a GPU, else the process's
resident set) and the projected hours for 10^10 environment steps for each,
the meta-step's matmul FLOPs (counted from its programs' HLO, the same for
both modes) and the rate it achieved beside a dense matmul's, measured in the
same process, and as its last line one JSON object with env_steps_per_s,
meta_steps_per_s, launch_to_first_step_s, peak_rss_mb, meta_step_gflop,
share_of_dense_matmul (XLA), env_steps_per_s_no_xla and
share_of_dense_matmul_no_xla. --mode=xla or --mode=no_xla runs that mode alone, in
this process, and prints its line and its JSON object. With
--config.meta.optimiser=es the environment steps are those of every ES member's
agents (ES agent environment steps/s) and a meta-step is an ES step.

--sweep_lifetimes_per_env and --sweep_inner_updates run a scaling sweep
instead: each number of lifetimes per environment at the config's K, then each
K at the config's lifetimes, one fresh process each (XLA unless --mode says
otherwise); a table of throughput and memory, each memory figure's growth per
lifetime and per inner update (a least-squares line), and a JSON object last.
"""

import json
import math
import os
import subprocess
import sys
from typing import Sequence

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
_SWEEP_LIFETIMES = flags.DEFINE_list(
    "sweep_lifetimes_per_env", [],
    "Scaling sweep: run --mode (xla if both) once per value of "
    "population.lifetimes_per_env, each in a fresh process, and print how "
    "throughput and memory grow.")
_SWEEP_K = flags.DEFINE_list(
    "sweep_inner_updates", [],
    "Scaling sweep: values of population.num_inner_updates (K), each run at "
    "the config's lifetimes per environment.")
_OWN_FLAGS = ("--mode", "--sweep_lifetimes_per_env", "--sweep_inner_updates")


def _child(mode: str, overrides: Sequence[str] = ()) -> dict:
  """Runs this launcher for one mode in a fresh process, with config
  `overrides` (`--config.x=y`) after the command line's; returns its figures."""
  argv = [a for a in sys.argv[1:] if not a.startswith(_OWN_FLAGS)]
  result = subprocess.run([sys.executable, os.path.abspath(__file__), *argv,
                           *overrides, f"--mode={mode}"], capture_output=True,
                          text=True, check=False)
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
          f"{figures['hours_for_1e10_env_steps']:.1f} h for 1e10 env steps"
          + _flops(figures))


def _flops(figures: dict) -> str:
  """The meta-step's matmul FLOP/s beside a dense matmul's, where counted."""
  if math.isnan(figures["meta_step_gflop"]):
    return ""
  return (f" | {figures['meta_step_gflop']:.1f} GFLOP of matmuls per meta-step"
          f" at {figures['achieved_gflop_per_s']:.1f} GFLOP/s, "
          f"{100 * figures['share_of_dense_matmul']:.0f}% of a dense matmul's "
          f"{figures['dense_matmul_gflop_per_s']:.0f} GFLOP/s")


def _positive_ints(flag: flags.FlagHolder) -> list:
  """A sweep flag's values as positive integers, or a usage error naming it."""
  try:
    values = [int(v) for v in flag.value]
  except ValueError:
    values = []
  if len(values) != len(flag.value) or any(v < 1 for v in values):
    raise app.UsageError(f"--{flag.name} takes positive integers separated by "
                         f"commas, got {','.join(flag.value)!r}")
  return values


def _sweep(config, mode: str) -> None:
  """The scaling sweep: one fresh process per setting, a table of
  throughput and memory, and the growth of peak and steady memory per
  lifetime and per inner update."""
  population = config.population
  settings = benchmark.scaling_settings(
      _positive_ints(_SWEEP_LIFETIMES), _positive_ints(_SWEEP_K),
      population.lifetimes_per_env, population.num_inner_updates)
  print(f"config {config.name}: scaling sweep, mode {mode}, "
        f"{len(population.envs)} environment(s), B={population.num_envs}, "
        f"T={population.unroll_length}", flush=True)
  print("| lifetimes/env | K | meta-steps/s | inner env steps/s | peak RSS MiB "
        "| steady RSS MiB | GFLOP/s (share of dense matmul) | CPU share |")
  print("| --- | --- | --- | --- | --- | --- | --- | --- |", flush=True)
  rows = []
  for lifetimes, k in settings:
    figures = _child(mode, [
        f"--config.population.lifetimes_per_env={lifetimes}",
        f"--config.population.num_inner_updates={k}"])
    rows.append((lifetimes, k, figures))
    print(f"| {lifetimes} | {k} | {figures['meta_steps_per_s']:.3f} | "
          f"{figures['env_steps_per_s']:,.0f} | {figures['peak_rss_mb']:.0f} | "
          f"{figures['steady_rss_mb']:.0f} | "
          f"{figures['achieved_gflop_per_s']:.1f} "
          f"({100 * figures['share_of_dense_matmul']:.0f}%) | "
          f"{figures['cpu_share']:.2f} |", flush=True)
  summary = {"config": config.name, "mode": mode, "points": [
      {"lifetimes_per_env": n, "inner_updates": k, **f} for n, k, f in rows]}
  for name, key, index, fixed in (
      ("lifetime per environment", "lifetime_per_env", 0,
       population.num_inner_updates),
      ("inner update", "inner_update", 1, population.lifetimes_per_env)):
    series = [(row[index], row[2]) for row in rows if row[1 - index] == fixed]
    if len({x for x, _ in series}) < 2:
      continue
    xs = [x for x, _ in series]
    for figure in ("peak_rss_mb", "steady_rss_mb"):
      slope, intercept = benchmark.linear_fit(xs, [f[figure] for _, f in series])
      print(f"{figure}: {slope:.1f} MiB per {name} (+{intercept:.0f} MiB), "
            f"fitted over {xs}", flush=True)
      summary[f"{figure}_per_{key}"] = slope
  print(json.dumps(summary), flush=True)


def main(argv):
  del argv
  config = _CONFIG.value
  es = config.meta.optimiser == "es"
  if _SWEEP_LIFETIMES.value or _SWEEP_K.value:
    _sweep(config, "xla" if _MODE.value == "both" else _MODE.value)
    return
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
      "meta_step_gflop": results["xla"]["meta_step_gflop"],
      "achieved_gflop_per_s": results["xla"]["achieved_gflop_per_s"],
      "dense_matmul_gflop_per_s": results["xla"]["dense_matmul_gflop_per_s"],
      "share_of_dense_matmul": results["xla"]["share_of_dense_matmul"],
      "share_of_dense_matmul_no_xla":
          results["no_xla"]["share_of_dense_matmul"],
  }
  print(json.dumps(summary), flush=True)


if __name__ == "__main__":
  app.run(main)
