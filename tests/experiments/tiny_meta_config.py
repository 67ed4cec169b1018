"""The tests' tiny meta-training config as a config file, for the launcher
(`--config=tests/experiments/tiny_meta_config.py`, with the repository on
PYTHONPATH)."""

import ml_collections

from tests.meta import test_trainer


def get_config() -> ml_collections.ConfigDict:
  return test_trainer.tiny_config(num_meta_steps=6)
