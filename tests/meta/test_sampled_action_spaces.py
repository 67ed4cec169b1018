"""population.sampled_action_spaces: a grid world's lifetimes are one group
that draws each lifetime's action space (Appendix A.1), and they meta-train."""

import numpy as np
import tensorflow as tf

from lpg_tf import envs
from lpg_tf.experiments import meta_train
from lpg_tf.meta import population as population_lib
from tests.meta import test_trainer


def test_one_group_per_grid_world():
  config = test_trainer.tiny_config(**{
      "population.sampled_action_spaces": True,
      "population.lifetimes_per_env": 4})
  layout = population_lib.group_layout(meta_train.population_spec(config))
  assert layout == [
      population_lib.GroupLayout("chain/short", None, 4),
      population_lib.GroupLayout("tabular/sparse", envs.SAMPLED, 4)]


def test_lifetimes_of_both_spaces_meta_train_and_redraw_at_reset():
  config = test_trainer.tiny_config(**{
      "population.sampled_action_spaces": True,
      "population.lifetimes_per_env": 4})
  trainer = meta_train.build_trainer(config, meta_train.build_rule(config))
  _, grid = trainer.population.groups
  assert grid.name_for_logs == "tabular/sparse[sampled]"

  def spaces():
    rows = grid.read().actor.env_state.instance.move_and_collect.numpy()
    per_lifetime = rows.reshape(grid.num_lifetimes, grid.num_envs)
    assert (per_lifetime == per_lifetime[:, :1]).all()  # One per lifetime.
    return per_lifetime[:, 0]

  drawn = [spaces()]
  for _ in range(3):
    state = grid.read()  # Every lifetime has lived its length: all restart.
    grid.write(state._replace(steps=tf.fill(
        state.steps.shape, tf.constant(grid.lifetime_steps, tf.int64))))
    numbers = trainer.step()
    assert numbers["meta_gradient_finite"] == 1.0
    assert np.isfinite(numbers["meta_loss"])
    drawn.append(spaces())
  drawn = np.stack(drawn)
  assert drawn.any() and not drawn.all()  # Both spaces lived.
  assert (drawn != drawn[:1]).any()  # Some lifetime drew anew at its reset.
