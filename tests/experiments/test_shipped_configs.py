"""Every preset in configs/ passes the same validation the launcher applies."""

import importlib

import pytest

from lpg_tf.experiments import config_validation

PRESETS = ("cpu", "paper", "bench_tabular", "pretrained", "pretrained_lpg_v",
           "gpu", "appendix_a")


@pytest.mark.parametrize("name", PRESETS)
def test_preset_validates(name):
  config = importlib.import_module(f"configs.{name}").get_config()
  config_validation.check(config)
  assert config.name == name


def test_pretrained_preset_keeps_y_alive_settings():
  """The shipped rule's preset: the y head's wider start and no beta1/beta3."""
  config = importlib.import_module("configs.pretrained").get_config()
  assert config.rule.y_head_init_stddev == 3.0
  assert config.meta.prediction_entropy_cost == 0.0
  assert config.meta.y_hat_l2_cost == 0.0
  assert len(config.population.envs) == 10


def test_gpu_preset_is_the_paper_population_with_fewer_lifetimes():
  """configs/gpu.py changes only the number of lifetimes of configs/paper.py,
  and keeps it even (grid worlds split lifetimes between two action spaces)."""
  gpu = importlib.import_module("configs.gpu").get_config()
  paper = importlib.import_module("configs.paper").get_config()
  assert gpu.population.lifetimes_per_env < paper.population.lifetimes_per_env
  assert gpu.population.lifetimes_per_env % 2 == 0
  gpu.name, gpu.population.lifetimes_per_env = (
      paper.name, paper.population.lifetimes_per_env)
  assert gpu.to_dict() == paper.to_dict()


def test_appendix_a_preset_is_the_cpu_run_on_every_training_environment():
  """configs/appendix_a.py: the paper's 15 environments at configs/cpu.py's
  sizes, 2 lifetimes each, its meta-step cut into programs of a few groups,
  a grid world's lifetimes one group that samples their action spaces, run
  without XLA."""
  appendix_a = importlib.import_module("configs.appendix_a").get_config()
  cpu = importlib.import_module("configs.cpu").get_config()
  paper = importlib.import_module("configs.paper").get_config()
  assert tuple(appendix_a.population.envs) == tuple(paper.population.envs)
  assert len(appendix_a.population.envs) == 15
  assert appendix_a.population.groups_per_program > 0
  assert cpu.population.groups_per_program == 0
  assert appendix_a.population.sampled_action_spaces
  assert not cpu.population.sampled_action_spaces
  assert not appendix_a.jit_compile and cpu.jit_compile
  appendix_a.jit_compile = True
  appendix_a.name, appendix_a.population.envs = cpu.name, cpu.population.envs
  appendix_a.population.groups_per_program = 0
  appendix_a.population.sampled_action_spaces = False
  assert appendix_a.to_dict() == cpu.to_dict()
