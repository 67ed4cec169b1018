"""kill -9 a meta-training run at random moments until it finishes; compare the
final rule and the best validated rule with an uninterrupted run's.

  PYTHONPATH=. python tests/experiments/kill_loop.py --kills=20 --seed=0

The run is the tests' tiny config with a checkpoint and an export at every
step and a validation every second step, so kills land in start-up and
compilation, in steps, in validations, in checkpoint writes and in exports of
rule/ and best_rule/; a few are aimed at the final step's save and export. Every
restart is the same command line (no --resume). Prints one line per restart
(what the directory held when it was killed, how the restart began) and, last,
one JSON object; exits non-zero if a restart failed or either rule differs.
"""

import argparse
import glob
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Tuple

import numpy as np
import tensorflow as tf

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAUNCHER = os.path.join(REPO, "launchers", "tpu_meta_train.py")
CONFIG = os.path.join(REPO, "tests", "experiments", "tiny_meta_config.py")
STEPS = 20
FLAGS = (f"--config={CONFIG}", f"--config.num_meta_steps={STEPS}",
         "--config.checkpoint_every=1", "--config.log_every=1",
         "--config.validation.every=2", "--config.validation.lifetimes=1")
STARTS = ("Starting a new run", "no checkpoint yet: starting it from step 0",
          "holds this run: continuing from")


def _command(workdir: str) -> List[str]:
  return [sys.executable, LAUNCHER, f"--workdir={workdir}", *FLAGS]


def _environment() -> Dict[str, str]:
  return dict(os.environ, PYTHONPATH=REPO)


def _phase(workdir: str, output: str, since: float) -> str:
  """What the run was doing, judged from its log and the temporaries it made
  (those older than `since`, the process's start, are a killed run's leftovers)."""
  def written_since(pattern: str) -> bool:
    return any(os.path.getmtime(p) >= since
               for p in glob.glob(os.path.join(workdir, pattern)))

  if "continuing from" not in output and "starting it from step 0" not in output \
      and "Starting a new run" not in output:
    return "start-up"
  # A progress line ("meta-step 3/20 | ...") says the run has stepped; other
  # lines name meta-steps too ("Resumed from ... at meta-step 3").
  if not re.search(r"meta-step \d+/", output) and \
      "complete at meta-step" not in output:
    return "building/compiling" if "Resumed from" not in output or \
        not written_since(".rule.tmp-*") else "re-export after resume"
  if written_since(os.path.join("checkpoints", "*_temp")) or written_since(
      os.path.join("checkpoints", "*.tempstate*")):
    return "checkpoint write"
  if written_since(".best_rule.tmp-*"):
    return "best rule export"
  if written_since(".rule.tmp-*"):
    final = f"meta-step {STEPS}/{STEPS}" in output
    return "final rule export" if final else "rule export"
  return "meta-step"


def _rule_weights(workdir: str, rule_dir: str = "rule") -> Dict[str, np.ndarray]:
  """An exported rule's variables (rule/ or best_rule/), read from its
  SavedModel variables file."""
  reader = tf.train.load_checkpoint(os.path.join(workdir, rule_dir, "variables",
                                                 "variables"))
  return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()
          if n.startswith("weights/")}


def _checkpoint_eta(workdir: str) -> Dict[str, np.ndarray]:
  reader = tf.train.load_checkpoint(
      tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")))
  return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()
          if n.startswith("rule/") and "OPTIMIZER_SLOT" not in n}


def _same(a: Dict[str, np.ndarray], b: Dict[str, np.ndarray]) -> bool:
  return set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)


class _Run:
  """One launcher process whose output is collected as it comes."""

  def __init__(self, workdir: str):
    self.start = time.time()
    self.process = subprocess.Popen(
        _command(workdir), env=_environment(), cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    self.lines: List[str] = []
    self._reader = threading.Thread(
        target=lambda: self.lines.extend(self.process.stdout), daemon=True)
    self._reader.start()

  @property
  def output(self) -> str:
    return "".join(self.lines)

  def finish(self) -> str:
    self.process.wait()
    self._reader.join()
    return self.output


def _time_of_first_step(workdir: str) -> Tuple[float, float]:
  """Runs the reference; returns (seconds to its first step, seconds per step:
  the median gap between progress lines, as a validation step takes longer)."""
  run = _Run(workdir)
  seen = {}  # meta-step -> when its progress line appeared.
  while run.process.poll() is None:
    for step in range(len(seen) + 1, STEPS + 1):
      if f"meta-step {step}/" not in run.output:
        break
      seen[step] = time.time() - run.start
    time.sleep(0.02)
  run.finish()
  if run.process.returncode != 0 or len(seen) < 2:
    raise RuntimeError(f"the reference run failed:\n{run.output[-3000:]}")
  gaps = sorted(seen[s] - seen[s - 1] for s in range(2, len(seen) + 1))
  return seen[1], gaps[len(gaps) // 2]


def run_kill_loop(kills: int, seed: int, root: str) -> Dict[str, object]:
  """Runs the loop (module docstring); returns its summary."""
  rng = random.Random(seed)
  reference = os.path.join(root, "reference")
  startup_s, step_s = _time_of_first_step(reference)
  workdir = os.path.join(root, "killed")
  restarts, phases, failures = [], {}, []
  while True:
    run = _Run(workdir)
    killing = sum(phases.values()) < kills
    at_end = sum(phases.values()) >= kills - 3
    # Where to kill: at a random time in start-up and compilation, or a random
    # moment within a random later step (its step, checkpoint write or export),
    # or (the last kills) within the final step's save and export.
    saved = [int(p.rsplit("-", 1)[1].split(".")[0]) for p in
             glob.glob(os.path.join(workdir, "checkpoints", "ckpt-*.index"))]
    current = max(saved, default=0)
    if at_end or current >= STEPS:
      target = ("end", rng.uniform(0.0, 1.5 * step_s))
    elif rng.random() < 0.3:
      target = ("time", rng.uniform(0.5, startup_s))
    else:
      # A step at most three ahead: the kills spread over the whole run rather
      # than reaching its end within a few restarts.
      target = ("step", rng.randint(current + 1, min(STEPS, current + 3)),
                rng.uniform(0.0, step_s))
    killed_in = None
    seen_at = None
    while killing and run.process.poll() is None:
      output = run.output
      now = time.time()
      if target[0] == "time":
        due = now - run.start >= target[1]
      else:
        marks = (((f"meta-step {STEPS}/{STEPS}",) if current < STEPS else
                  ("Resumed from",)) if target[0] == "end" else
                 tuple(f"meta-step {s}/" for s in range(target[1], STEPS + 1)))
        if seen_at is None and any(m in output for m in marks):
          seen_at = now
        due = seen_at is not None and now - seen_at >= target[-1]
      if due:
        killed_in = _phase(workdir, output, run.start)
        run.process.send_signal(signal.SIGKILL)
        break
      time.sleep(0.01)
    output = run.finish()
    began = next((s for s in STARTS if s in output), "killed before deciding")
    if "complete at meta-step" in output:
      began = "run complete: rule re-exported"
    restarts.append({"killed_in": killed_in, "began": began,
                     "returncode": run.process.returncode})
    print(f"run {len(restarts):2d}: began '{began}', "
          + (f"killed -9 during {killed_in}" if killed_in
             else f"exited {run.process.returncode}"), flush=True)
    if killed_in:
      phases[killed_in] = phases.get(killed_in, 0) + 1
    elif run.process.returncode != 0 or "Traceback" in output:
      failures.append(output[-3000:])
      break
    elif not killing:
      break
  rule_equal = _same(_rule_weights(workdir), _rule_weights(reference))
  best_rule_equal = _same(_rule_weights(workdir, "best_rule"),
                          _rule_weights(reference, "best_rule"))
  eta_equal = _same(_checkpoint_eta(workdir), _checkpoint_eta(reference))
  return {"kills": sum(phases.values()), "kills_by_phase": phases,
          "runs": len(restarts), "failures": len(failures),
          "final_rule_equal": rule_equal, "best_rule_equal": best_rule_equal,
          "final_checkpoint_eta_equal": eta_equal,
          "failure_outputs": failures}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--kills", type=int, default=20)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as root:
    summary = run_kill_loop(args.kills, args.seed, root)
  print(json.dumps(summary))
  ok = (not summary["failures"] and summary["final_rule_equal"]
        and summary["best_rule_equal"] and summary["final_checkpoint_eta_equal"])
  sys.exit(0 if ok else 1)


if __name__ == "__main__":
  main()
