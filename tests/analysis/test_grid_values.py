"""lpg_tf/analysis/grid_values.py: true values against the hand, the in-graph
environment (Monte Carlo) and a brute-force search over policies."""

import itertools

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from lpg_tf import envs
from lpg_tf.analysis import grid_values
from lpg_tf.envs import base
from lpg_tf.envs import grid_model
from lpg_tf.envs import grid_world

ObjectType = grid_world.ObjectType
RIGHT, LEFT = 5, 3  # Directions (0, +1) and (0, -1) of the 3 x 3 neighbourhood.


def _tiny(width, objects, action_space=base.MOVE):
  return grid_world.TabularGridWorld(
      "tabular/tiny", grid_world.GridSpec(1, width, objects, 50), action_space)


def monte_carlo_returns(env, instance, states, policy, gamma, episodes,
                        horizon, seed):
  """Discounted returns of `episodes` runs of `policy` from each of `states`,
  `[len(states), episodes]`, cut after `horizon` steps (below the step limit,
  so no run is truncated by the environment)."""
  num_objects = len(instance)
  start = np.repeat(states, episodes)
  cell, bits = np.divmod(start, 2**num_objects)
  size = len(start)
  state = grid_world.GridState(
      instance=tf.constant(np.tile(instance, [size, 1]), tf.int32),
      rng=tf.constant([seed, 1], tf.int32), agent=tf.constant(cell, tf.int32),
      object_cell=tf.constant(np.tile(instance, [size, 1]), tf.int32),
      present=tf.constant(
          ((bits[:, None] >> np.arange(num_objects)) & 1).astype(bool)),
      step_count=tf.zeros([size], tf.int32))
  cdf = np.cumsum(policy, axis=-1)
  rng = np.random.default_rng(seed)
  observation, returns = start, np.zeros(size)
  weight = np.ones(size)  # gamma^t while the episode runs, then 0
  transition = tf.function(env.transition)
  for _ in range(horizon):
    action = np.minimum(
        (rng.random(size)[:, None] > cdf[observation]).sum(-1),
        policy.shape[1] - 1)
    state, timestep = transition(state, tf.constant(action, tf.int32))
    returns += weight * timestep.reward.numpy()
    weight *= gamma * timestep.discount.numpy()
    observation = timestep.observation.numpy()
  return returns.reshape(len(states), episodes)


class GridValuesTest(parameterized.TestCase):

  def test_one_object_by_hand(self):
    """1 x 2 grid, a +1 object on cell 1 that ends the episode, never
    respawning; the uniform policy over the 9 MOVE actions. From cell 0 only
    RIGHT collects: V = 1/9 + 8/9 gamma V, so V = 1 / (9 - 8 gamma). On cell 1
    with the object there, every action but LEFT stays and collects:
    V = 8/9 + 1/9 gamma V(cell 0). With the object gone, nothing is left."""
    env = _tiny(2, (ObjectType(1, 1.0, 1.0, 0.0),))
    model = grid_model.tabular_model(env, [1])
    gamma = 0.9
    values = grid_values.policy_values(
        model, grid_values.uniform_policy(model), gamma)
    v0 = 1.0 / (9.0 - 8.0 * gamma)
    np.testing.assert_allclose(
        values, [0.0, v0, 0.0, 8.0 / 9.0 + gamma / 9.0 * v0], rtol=1e-12)
    optimal = grid_values.optimal_values(model, gamma)
    # Optimal: RIGHT from cell 0 collects at once; LEFT from cell 1 delays it.
    np.testing.assert_allclose(optimal.values, [0.0, 1.0, 0.0, 1.0], atol=1e-7)
    self.assertAlmostEqual(optimal.action_values[model.state_index(0, 1),
                                                 RIGHT], 1.0)
    self.assertAlmostEqual(optimal.action_values[model.state_index(1, 1),
                                                 LEFT], gamma)

  @parameterized.named_parameters(("uniform", None), ("near_optimal", 0.05))
  def test_policy_values_agree_with_monte_carlo_on_tabular_dense(
      self, temperature):
    env = envs.make("tabular/dense")
    instance = env.sample_instances(tf.constant([5, 6]), 1).numpy()[0]
    model = grid_model.tabular_model(env, instance)
    gamma = 0.9
    if temperature is None:
      policy = grid_values.uniform_policy(model)
    else:
      q = grid_values.optimal_values(model, gamma).action_values
      policy = grid_values.softmax_policy(q, temperature)
    values = grid_values.policy_values(model, policy, gamma)
    free_cell = next(c for c in range(model.num_cells) if c not in instance)
    states = [model.state_index(free_cell, 0b1111),  # all objects present
              model.state_index(free_cell, 0b0101),
              model.state_index(instance[0], 0b0001),  # on a present +1
              model.state_index(instance[2], 0b1110)]  # next to nothing
    horizon = 150  # gamma^150 / (1 - gamma) < 2e-6: the cut costs nothing
    returns = monte_carlo_returns(env, instance, np.array(states), policy,
                                  gamma, episodes=1000, horizon=horizon, seed=7)
    standard_error = returns.std(axis=1, ddof=1) / np.sqrt(returns.shape[1])
    np.testing.assert_array_less(
        np.abs(returns.mean(axis=1) - values[states]),
        5 * standard_error + gamma**horizon / (1 - gamma))

  @parameterized.named_parameters(
      ("move_and_collect", 2, base.MOVE_AND_COLLECT),
      ("move", 3, base.MOVE))
  def test_value_iteration_matches_the_best_of_all_policies(self, width,
                                                            action_space):
    """V* = max over every deterministic policy of V^pi, state by state
    (actions with the same outcome in a state are enumerated once)."""
    env = _tiny(width, (ObjectType(1, 1.0, 0.5, 0.3),), action_space)
    model = grid_model.tabular_model(env, [1])
    gamma = 0.8
    transitions = model.transitions() * (1.0 - model.p_terminate)[..., None]
    choices = []
    for s in range(model.num_states):
      outcomes = {}
      for a in range(model.num_actions):
        outcomes.setdefault((model.next_cell[s, a], model.collected[s, a]), a)
      choices.append(sorted(outcomes.values()))
    policies = np.array(list(itertools.product(*choices)))  # [N, S]
    rows = np.arange(model.num_states)
    matrix = np.eye(model.num_states) - gamma * transitions[rows, policies]
    values = np.linalg.solve(matrix, model.reward[rows, policies][..., None])
    best = values[..., 0].max(axis=0)
    optimal = grid_values.optimal_values(model, gamma)
    np.testing.assert_allclose(optimal.values, best, atol=1e-7)
    greedy = np.eye(model.num_actions)[optimal.action_values.argmax(-1)]
    np.testing.assert_allclose(
        grid_values.policy_values(model, greedy, gamma), best, atol=1e-7)

  def test_softmax_policy(self):
    q = np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 0.0]])
    policy = grid_values.softmax_policy(q, 1.0)
    np.testing.assert_allclose(policy.sum(-1), 1.0)
    np.testing.assert_allclose(policy[0, 0] / policy[0, 2], np.e)
    np.testing.assert_allclose(grid_values.softmax_policy(q, 1e-3),
                               [[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]], atol=1e-12)

  def test_rejects_gamma_one_and_bad_policies(self):
    model = grid_model.tabular_model(
        _tiny(2, (ObjectType(1, 1.0, 1.0, 0.0),)), [1])
    with self.assertRaisesRegex(ValueError, "gamma"):
      grid_values.policy_values(model, grid_values.uniform_policy(model), 1.0)
    with self.assertRaisesRegex(ValueError, "policy must be"):
      grid_values.policy_values(model, np.ones([4, 2]) / 2, 0.9)


if __name__ == "__main__":
  absltest.main()
