"""Frames per second of Atari training through Reverb, next to the bare emulator.

  python launchers/atari_throughput.py                      # Breakout, 1 and 2 actors
  python launchers/atari_throughput.py --game=atari/Pong --duration_s=30

Prints the raw speed of the vector environment with random actions, then the
speed of the actor/learner pipeline (A2C learner on the Table 4 agent) for each
number of actor processes, with the share of time the learner waited for data;
the last line is one JSON object of the figures.
"""

import json

from absl import app
from absl import flags

from lpg_tf import errors
from lpg_tf.experiments import atari_throughput

_GAME = flags.DEFINE_string("game", "atari/Breakout", "atari/<Game>.")
_ACTORS = flags.DEFINE_list("num_actors", ["1", "2"], "Actor counts to measure.")
_NUM_ENVS = flags.DEFINE_integer("num_envs", 30, "Environments over all actors.")
_DURATION = flags.DEFINE_float("duration_s", 25.0,
                               "Timed seconds per pipeline measurement.")
_RAW_STEPS = flags.DEFINE_integer(
    "raw_steps", 1500, "Vector steps timed for the raw speed (~20 s at 30 envs).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    figures = atari_throughput.measure(
        _GAME.value, [int(n) for n in _ACTORS.value], _NUM_ENVS.value,
        _DURATION.value, _RAW_STEPS.value)
  except errors.ConfigError as error:
    raise app.UsageError(str(error)) from error
  print(f"{figures['game']}, {figures['num_envs']} environments", flush=True)
  print(f"raw vector env, random actions: {figures['raw_frames_per_s']:,.0f} "
        "frames/s", flush=True)
  for n in _ACTORS.value:
    print(f"Reverb pipeline, {n} actor(s): "
          f"{figures[f'pipeline_frames_per_s_{n}_actors']:,.0f} frames/s "
          f"(learner waited {figures[f'learner_wait_fraction_{n}_actors']:.0%}"
          " of the time)", flush=True)
  print(json.dumps(figures), flush=True)


if __name__ == "__main__":
  app.run(main)
