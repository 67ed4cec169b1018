"""Value regression from y at several discounts (Section 4.3, Figure 5).

"We generated y vectors as in Figure 4c for many grid world instances with a
discount factor of 0.995 and trained a value regression model g : R^30 -> R, a
1-layer MLP, to predict true values just from predictions y for various
discount factors from 0.995 to 0.9. We then evaluated how accurate the value
regression is on a held-out set of grid worlds. For a comparison, we also
trained a value regression model h : R -> R for TD(lambda) from values at
discount factor 0.995 to values at the other discount factors."

Here, on instances of one grid world task (`probe_grid`), each with its
near-optimal policy softmax(Q*_0.995 / temperature):
  * the rule updates only y (`y_probe.evaluate_policies`, gamma = 0.995) and
    A2C's critic, TD(lambda), updates only the scalar value, on the same
    trajectories; both are recorded every `record_every` updates;
  * at every recorded update and for every discount in `discounts`, an MLP
    with one hidden layer is fitted from y(s) (g) and one from v(s) (h) to
    V^pi_discount(s) over the states of the training instances visited at
    least `min_visits` times, and scored by its mean squared error on the
    held-out instances' visited states (per instance, then averaged over
    instances: "averaged over held-out 10 grid world instances").
Two references bound the curves: "predict the mean", the held-out MSE of the
training mean of V^pi_discount, is what a regression that learned nothing
scores; "exact V_gamma", h fitted on the exact V^pi_0.995 instead of the TD
estimate, is the most any scalar value at gamma can tell about the other
discounts (what TD(lambda) approaches as it converges).

All R x D regressions of one input kind train at once as one batched MLP
(`fit_mlps`): parameters `[R, D, ...]`, minibatch Adam on standardised inputs
and targets.
"""

from typing import NamedTuple, Sequence, Tuple

import numpy as np
import sonnet as snt
import tensorflow as tf

from lpg_tf.analysis import grid_values
from lpg_tf.analysis import y_probe
from lpg_tf.envs import grid_model
from lpg_tf.envs import grid_world
from lpg_tf.rules import a2c
from lpg_tf.rules import base as rule_base

GAMMA = 0.995  # The discount the rule updates y with (Section 4.3).
DISCOUNTS = (0.995, 0.99, 0.98, 0.95, 0.9)  # "from 0.995 to 0.9".
HIDDEN_SIZE = 32
FIT_STEPS = 2000
FIT_BATCH_SIZE = 1024
FIT_LEARNING_RATE = 3e-3
_STD_FLOOR = 1e-6
# SGD learning rate of the tabular TD(lambda) value: the lowest of A2C's swept
# tabular rates (evaluation.A2C_SWEPT_LEARNING_RATES); at gamma = 0.995 A2C's
# default 40 diverges on this task's frequently visited states.
TD_LEARNING_RATE = 10.0


class MLPs(NamedTuple):
  """R x D one-hidden-layer MLPs (ReLU), with the standardisation they were
  fitted under.

  Attributes:
    w1: `[R, D, d, H]`, b1 `[R, D, H]`, w2 `[R, D, H]`, b2 `[R, D]`.
    x_mean, x_std: `[R, d]` of the inputs of each row r.
    t_mean, t_std: `[D]` of the targets of each column.
  """
  w1: np.ndarray
  b1: np.ndarray
  w2: np.ndarray
  b2: np.ndarray
  x_mean: np.ndarray
  x_std: np.ndarray
  t_mean: np.ndarray
  t_std: np.ndarray


def _forward(w1, b1, w2, b2, x):
  """`[R, D, N]` outputs of the standardised inputs `x` `[R, N, d]`."""
  hidden = tf.nn.relu(tf.einsum("rnk,rdkh->rdnh", x, w1) + b1[:, :, None])
  return tf.einsum("rdnh,rdh->rdn", hidden, w2) + b2[..., None]


def fit_mlps(inputs: np.ndarray, targets: np.ndarray, *,
             hidden_size: int = HIDDEN_SIZE, steps: int = FIT_STEPS,
             batch_size: int = FIT_BATCH_SIZE,
             learning_rate: float = FIT_LEARNING_RATE, seed: int = 0) -> MLPs:
  """Fits MLP (r, d) from `inputs[r]` to `targets[d]` for every r and d.

  Args:
    inputs: `[R, N, d]` the N training samples' inputs, one set per row r.
    targets: `[D, N]` their targets, one set per column d.
    hidden_size: H.
    steps, batch_size, learning_rate: Adam on minibatches of the N samples
      (the same samples for every model in a step), mean squared error of the
      standardised targets.
    seed: seed of the initial weights and of the minibatches.
  """
  inputs = np.asarray(inputs, np.float64)
  targets = np.asarray(targets, np.float64)
  num_rows, num_samples, size = inputs.shape
  num_columns = targets.shape[0]
  if targets.shape != (num_columns, num_samples):
    raise ValueError(f"targets must be [D, N = {num_samples}], got "
                     f"{list(targets.shape)}")
  x_mean, x_std = inputs.mean(1), np.maximum(inputs.std(1), _STD_FLOOR)
  t_mean, t_std = targets.mean(1), np.maximum(targets.std(1), _STD_FLOOR)
  x = tf.constant((inputs - x_mean[:, None]) / x_std[:, None], tf.float32)
  t = tf.constant((targets - t_mean[:, None]) / t_std[:, None], tf.float32)
  rng = np.random.default_rng(seed)
  shape = (num_rows, num_columns)
  variables = [
      tf.Variable(rng.normal(0, np.sqrt(2.0 / size),
                             shape + (size, hidden_size)), dtype=tf.float32),
      tf.Variable(np.zeros(shape + (hidden_size,)), dtype=tf.float32),
      tf.Variable(rng.normal(0, np.sqrt(1.0 / hidden_size),
                             shape + (hidden_size,)), dtype=tf.float32),
      tf.Variable(np.zeros(shape), dtype=tf.float32)]
  optimiser = snt.optimizers.Adam(learning_rate)
  batch_size = min(batch_size, num_samples)

  @tf.function
  def step(index):
    with tf.GradientTape() as tape:
      out = _forward(*variables, tf.gather(x, index, axis=1))
      loss = tf.reduce_mean(tf.square(out - tf.gather(t, index, axis=1)))
    optimiser.apply(tape.gradient(loss, variables), variables)
    return loss

  for _ in range(steps):
    step(tf.constant(rng.choice(num_samples, batch_size, replace=False),
                     tf.int32))
  return MLPs(*(v.numpy() for v in variables), x_mean, x_std, t_mean, t_std)


def predict(mlps: MLPs, inputs: np.ndarray) -> np.ndarray:
  """`[R, D, N]` predictions, in the targets' units, for `inputs` `[R, N, d]`."""
  x = (np.asarray(inputs, np.float64) - mlps.x_mean[:, None]) / mlps.x_std[:, None]
  out = _forward(mlps.w1, mlps.b1, mlps.w2, mlps.b2,
                 tf.constant(x, tf.float32)).numpy()
  return out * mlps.t_std[None, :, None] + mlps.t_mean[None, :, None]


def held_out_mse(predictions: np.ndarray, targets: np.ndarray,
                 instance_of_sample: np.ndarray) -> np.ndarray:
  """`[R, D]` squared error averaged over each instance's samples, then over
  instances.

  Args:
    predictions: `[R, D, N]`.
    targets: `[D, N]`.
    instance_of_sample: `[N]` which held-out instance each sample is from.
  """
  errors = np.square(predictions - targets[None])
  per_instance = [errors[..., instance_of_sample == i].mean(-1)
                  for i in np.unique(instance_of_sample)]
  return np.mean(per_instance, axis=0)


class ValueHorizons(NamedTuple):
  """Figure 5's numbers.

  Attributes:
    env: the task's name; action_space its action space.
    gamma: the discount y (and the TD value) were updated with.
    discounts: `[D]` the discounts of the regression targets.
    recorded_updates: `[R]` updates after which y and v were read.
    env_steps_per_update: T x B per instance.
    train_instances, held_out_instances: how many instances each set has.
    train_samples, held_out_samples: visited (instance, state) pairs in each.
    mse_y: `[D][R]` held-out MSE of g: y -> V_discount.
    mse_td: `[D][R]` held-out MSE of h: v -> V_discount.
    mse_mean: `[D]` held-out MSE of the training mean of V_discount.
    mse_exact_value: `[D]` held-out MSE of h fitted on the exact V_gamma.
    value_range: `[D][2]` min and max of the held-out V_discount.
  """
  env: str
  action_space: str
  gamma: float
  discounts: Tuple[float, ...]
  recorded_updates: Tuple[int, ...]
  env_steps_per_update: int
  train_instances: int
  held_out_instances: int
  train_samples: int
  held_out_samples: int
  mse_y: Tuple[Tuple[float, ...], ...]
  mse_td: Tuple[Tuple[float, ...], ...]
  mse_mean: Tuple[float, ...]
  mse_exact_value: Tuple[float, ...]
  value_range: Tuple[Tuple[float, float], ...]


def near_optimal_policies(env: grid_world.TabularGridWorld,
                          instances: np.ndarray, gamma: float,
                          temperature: float) -> Tuple[list, np.ndarray]:
  """(the instances' exact models, `[L, S, A]` softmax(Q*_gamma / T))."""
  models = [grid_model.tabular_model(env, row) for row in instances]
  policies = np.stack([
      grid_values.softmax_policy(
          grid_values.optimal_values(m, gamma).action_values, temperature)
      for m in models])
  return models, policies


def true_values(models: Sequence[grid_model.GridModel], policies: np.ndarray,
                discounts: Sequence[float]) -> np.ndarray:
  """`[D, L, S]` V^pi_discount of each instance's policy."""
  return np.stack([np.stack([grid_values.policy_values(m, p, d)
                             for m, p in zip(models, policies)])
                   for d in discounts])


def value_horizons(rule: rule_base.UpdateRule,
                   env: grid_world.TabularGridWorld,
                   train_instances: np.ndarray, held_out_instances: np.ndarray,
                   num_updates: int, record_every: int, *,
                   learning_rate: float, kl_cost: float,
                   td_learning_rate: float = TD_LEARNING_RATE,
                   discounts: Sequence[float] = DISCOUNTS,
                   gamma: float = GAMMA, num_envs: int = 16,
                   unroll_length: int = 20,
                   temperature: float = y_probe.NEAR_OPTIMAL_TEMPERATURE,
                   min_visits: int = y_probe.MIN_VISITS,
                   fit_steps: int = FIT_STEPS, seed: int = 0,
                   jit_compile: bool = True) -> ValueHorizons:
  """Runs Figure 5's analysis (module docstring).

  Args:
    rule: the rule under test; it must read y.
    env: a tabular grid world.
    train_instances, held_out_instances: `[N_train, M]`, `[N_held, M]`.
    num_updates: updates of T x B steps per instance.
    record_every: read y and v every this many updates.
    learning_rate, kl_cost: the agent's alpha_lr and alpha_y for the rule.
    td_learning_rate: the SGD learning rate of the TD(lambda) value.
    discounts: the regression targets' discounts.
    gamma: the discount of the updates and of the near-optimal policy.
    num_envs, unroll_length: B and T.
    temperature: of the near-optimal policies.
    min_visits: states visited fewer times are left out.
    fit_steps: Adam steps of each regression.
    seed: seed of y's initialisation, episodes, actions and the fits.
    jit_compile: compile the updates with XLA.

  Raises:
    ValueError: the rule reads no y, or a set leaves no visited state.
  """
  if rule.prediction_size is None:
    raise ValueError("The rule reads no y: value regression from y needs an "
                     "LPG rule with a prediction vector")
  instances = np.concatenate([train_instances, held_out_instances])
  is_train = np.arange(len(instances)) < len(train_instances)
  models, policies = near_optimal_policies(env, instances, gamma, temperature)
  values = true_values(models, policies, discounts)
  exact = true_values(models, policies, [gamma])[..., None]  # [1, L, S, 1]
  runs = [y_probe.evaluate_policies(
      r, env, instances, policies, gamma, num_updates,
      prediction_size=rule.prediction_size, learning_rate=lr,
      kl_cost=kl_cost, num_envs=num_envs, unroll_length=unroll_length,
      seed=seed, record_every=record_every, jit_compile=jit_compile)
          for r, lr in ((rule, learning_rate), (a2c.A2C(), td_learning_rate))]
  visited = runs[0].visits >= min_visits  # The same trajectories in both.
  train, held = visited & is_train[:, None], visited & ~is_train[:, None]
  if not train.any() or not held.any():
    raise ValueError(f"No state was visited {min_visits} times in the "
                     "training or the held-out instances: raise num_updates")
  held_instance = np.broadcast_to(np.arange(len(instances))[:, None],
                                  visited.shape)[held]
  mse = {}
  for name, history in (("y", runs[0].y_history),
                        ("td", runs[1].value_history[..., None]),
                        ("exact", exact)):
    mlps = fit_mlps(history[:, train], values[:, train], steps=fit_steps,
                    seed=seed)
    mse[name] = held_out_mse(predict(mlps, history[:, held]), values[:, held],
                             held_instance)
  mean_predictions = np.broadcast_to(
      values[:, train].mean(1)[None, :, None], (1,) + values[:, held].shape)
  mse_mean = held_out_mse(mean_predictions, values[:, held], held_instance)[0]
  return ValueHorizons(
      env=env.spec.name, action_space=env.spec.action_space,
      gamma=float(gamma), discounts=tuple(float(d) for d in discounts),
      recorded_updates=tuple(int(u) for u in runs[0].recorded_updates),
      env_steps_per_update=num_envs * unroll_length,
      train_instances=len(train_instances),
      held_out_instances=len(held_out_instances),
      train_samples=int(train.sum()), held_out_samples=int(held.sum()),
      mse_y=tuple(tuple(float(v) for v in row) for row in mse["y"].T),
      mse_td=tuple(tuple(float(v) for v in row) for row in mse["td"].T),
      mse_mean=tuple(float(v) for v in mse_mean),
      mse_exact_value=tuple(float(v) for v in mse["exact"][0]),
      value_range=tuple((float(v.min()), float(v.max()))
                        for v in values[:, held]))
