"""The agent network: pi(a|s), y(s) and a baseline for L lifetimes at once.

An agent (Section 3.1) maps a state to policy logits, prediction logits (y(s) is
their softmax on the m-simplex) and a scalar baseline (a value for A2C, f(s) of
Eq. 7). All L lifetimes of one environment group are one module: every parameter
has a leading axis L, and the lifetimes never share a weight.

The parameters theta are a flat dict `{name: [L, ...] tensor}`.
`apply(params, x)` is a pure function of them, so the learner can run K
functional updates theta <- theta - lr * g inside an outer GradientTape and
differentiate through them (DESIGN.md, idiom 1); the module's variables only
store the current theta between meta-steps, written back with `assign`.
"""

import math
from typing import Callable, Dict, NamedTuple, Optional, Sequence, Tuple, Union

import sonnet as snt
import tensorflow as tf

from lpg_tf import types
from lpg_tf.agents import layers
from lpg_tf.agents import torsos

Params = Dict[str, tf.Tensor]

# Table entries of a tabular agent at initialisation: small, so pi starts near
# uniform, but random, so the lifetimes differ.
TABLE_INIT_STDDEV = 0.01

# The policy logit of an action a lifetime does not have: softmax gives it
# probability 0 exactly in float32, and unlike -inf it keeps log-probabilities,
# entropies and theta finite.
MASKED_LOGIT = -1e9

_WEIGHT = "weight"
_BIAS = "bias"
_TABLE = "table"
_HEADS = ("policy", "prediction", "baseline")


class _ParamSpec(NamedTuple):
  """How to draw one parameter of all lifetimes: shape, initialiser, fan-in."""
  shape: Sequence[int]
  init: str
  fan_in: int = 0


class AgentNetwork(snt.Module):
  """Agent networks of L lifetimes with policy, prediction and baseline heads.

  Table 3 / Table 4 torsos, then three linear heads (A policy logits, m
  prediction logits, 1 baseline). A tabular agent has no torso or heads: it is a
  table `[L, S, A + m + 1]` with distinct pi(a|s), y(s) and baseline per state
  (Appendix A.1).

  Observations are `[L, *batch, *observation_shape]` with any number of batch
  dimensions (e.g. `[L, T + 1, B]`): int32 state indices for tabular agents,
  float {0, 1} tensors for grid worlds and chains, `[84, 84, 4]` channels-last
  frames for Atari (uint8 frames are scaled by 1/255).

  Usage:
    torso = torsos.grid_conv([16], [32])      # C(16)-D(32) of Table 3
    agent = AgentNetwork(8, [11, 11, 4], tf.float32, 9, torso, seed=[1, 2])
    out = agent(observation)                  # with the stored theta
    out = agent.apply(params, observation)    # with tensors, differentiable
    agent.assign(new_params)
  """

  def __init__(self,
               num_lifetimes: int,
               observation_shape: Sequence[int],
               observation_dtype: tf.DType,
               num_actions: int,
               torso: torsos.TorsoSpec,
               prediction_size: int = 30,
               num_states: Optional[int] = None,
               seed: Union[int, Sequence[int], tf.Tensor] = 0,
               table_init_stddev: float = TABLE_INIT_STDDEV,
               per_lifetime_convs: bool = False,
               name: str = "agent_network"):
    """Builds the network and its variables, holding theta_0 drawn from `seed`.

    Create it inside a `tf.distribute` strategy's scope to place the variables.

    Args:
      num_lifetimes: L, the number of lifetimes batched on the leading axis.
      observation_shape: shape of one environment's observation, () for a state
        index.
      observation_dtype: dtype of observations (checked by `apply`); uint8 is
        scaled by 1/255.
      num_actions: A, the number of discrete actions.
      torso: the architecture (see `torsos`).
      prediction_size: m, the size of the prediction vector y (30 in the paper).
      num_states: S, the number of state indices; required for a tabular torso.
      seed: an int or a `[2]` int32 stateless seed for theta_0.
      table_init_stddev: standard deviation of a tabular agent's initial
        entries.
      per_lifetime_convs: a conv torso runs one convolution per lifetime
        (`layers.conv2d`'s `per_lifetime`): set it for graphs run without XLA.
      name: module name.

    Raises:
      ValueError: if the torso does not fit the observations.
    """
    super().__init__(name=name)
    self._num_lifetimes = num_lifetimes
    self._observation_shape = tuple(observation_shape)
    self._observation_dtype = tf.as_dtype(observation_dtype)
    self._num_actions = num_actions
    self._torso = torso
    self._prediction_size = prediction_size
    self._num_states = num_states
    self._table_init_stddev = table_init_stddev
    self._per_lifetime_convs = per_lifetime_convs
    self._param_specs = self._make_param_specs()
    with self.name_scope:
      self._params = {
          key: tf.Variable(value, name=key.replace("/", "_"))
          for key, value in self.init_params(_as_seed(seed)).items()
      }

  @property
  def num_lifetimes(self) -> int:
    return self._num_lifetimes

  @property
  def num_actions(self) -> int:
    return self._num_actions

  @property
  def prediction_size(self) -> int:
    return self._prediction_size

  @property
  def torso(self) -> torsos.TorsoSpec:
    return self._torso

  @property
  def params(self) -> Dict[str, tf.Variable]:
    """The variables holding the current theta, `{name: [L, ...]}`."""
    return dict(self._params)

  def _make_param_specs(self) -> Dict[str, _ParamSpec]:
    """Names, shapes and initialisers of theta, in a fixed order."""
    num_lifetimes = self._num_lifetimes
    torso = self._torso
    outputs = self._num_actions + self._prediction_size + 1
    if torso.kind == torsos.TABULAR:
      if self._num_states is None or self._observation_shape:
        raise ValueError("A tabular agent needs scalar state-index "
                         "observations and num_states; got observation_shape "
                         f"{self._observation_shape}, num_states "
                         f"{self._num_states}.")
      return {"table": _ParamSpec([num_lifetimes, self._num_states, outputs],
                                  _TABLE)}
    specs = {}
    if torso.kind == torsos.CONV:
      if len(self._observation_shape) != 3:
        raise ValueError("A conv torso needs [H, W, C] observations, got "
                         f"{self._observation_shape}.")
      height, width, channels = self._observation_shape
      for i, (out, kernel, stride) in enumerate(
          zip(torso.conv_channels, torso.conv_kernels, torso.conv_strides)):
        fan_in = kernel * kernel * channels
        specs[f"conv_{i}/w"] = _ParamSpec(
            [num_lifetimes, kernel, kernel, channels, out], _WEIGHT, fan_in)
        specs[f"conv_{i}/b"] = _ParamSpec([num_lifetimes, out], _BIAS)
        height = layers.conv_output_size(height, kernel, stride, torso.padding)
        width = layers.conv_output_size(width, kernel, stride, torso.padding)
        channels = out
      size = height * width * channels
    elif torso.kind == torsos.MLP:
      if not self._observation_shape:
        raise ValueError("An MLP torso needs tensor observations; use a "
                         "tabular torso for state indices.")
      size = math.prod(self._observation_shape)
    else:
      raise ValueError(f"Unknown torso kind {torso.kind!r}.")
    for i, units in enumerate(torso.dense_sizes):
      specs[f"dense_{i}/w"] = _ParamSpec([num_lifetimes, size, units], _WEIGHT,
                                         size)
      specs[f"dense_{i}/b"] = _ParamSpec([num_lifetimes, units], _BIAS)
      size = units
    head_sizes = (self._num_actions, self._prediction_size, 1)
    for head, units in zip(_HEADS, head_sizes):
      specs[f"{head}/w"] = _ParamSpec([num_lifetimes, size, units], _WEIGHT,
                                      size)
      specs[f"{head}/b"] = _ParamSpec([num_lifetimes, units], _BIAS)
    return specs

  def init_params(self, seed: tf.Tensor) -> Params:
    """Draws theta_0 ~ p(theta_0) for all L lifetimes; pure and stateless.

    Conv and dense weights follow Sonnet's default (truncated normal, standard
    deviation 1 / sqrt(fan_in)), biases are zero, a table is N(0,
    table_init_stddev^2). Every lifetime gets its own draw; the result is a
    deterministic function of `seed`, so it can also re-initialise lifetimes
    that are reset (with `select_lifetimes`).

    Args:
      seed: `[2]` int32 stateless seed.

    Returns:
      `{name: [L, ...] float32}`.
    """
    seeds = tf.random.experimental.stateless_split(seed, len(self._param_specs))
    params = {}
    for i, (key, spec) in enumerate(self._param_specs.items()):
      if spec.init == _WEIGHT:
        params[key] = layers.fan_in_truncated_normal(seeds[i], spec.shape,
                                                     spec.fan_in)
      elif spec.init == _TABLE:
        params[key] = tf.random.stateless_normal(
            spec.shape, seed=seeds[i], stddev=self._table_init_stddev)
      else:
        params[key] = tf.zeros(spec.shape)
    return params

  def apply(self, params: Params, observation: tf.Tensor) -> types.AgentOutput:
    """The agent's outputs under `params`; a pure function of its arguments.

    Args:
      params: `{name: [L, ...]}` tensors (or variables) with the structure of
        `init_params`; float32, or float64 to compute in float64.
      observation: `[L, *batch, *observation_shape]`.

    Returns:
      AgentOutput with policy_logits `[L, *batch, A]`, prediction_logits
      `[L, *batch, m]` and baseline `[L, *batch]`, in the dtype of `params`.
    """
    observation = tf.convert_to_tensor(observation)
    obs_rank = len(self._observation_shape)
    batch_rank = observation.shape.rank - 1 - obs_rank
    if (batch_rank < 0 or observation.shape[0] != self._num_lifetimes or
        tuple(observation.shape[1 + batch_rank:]) != self._observation_shape or
        observation.dtype != self._observation_dtype):
      raise ValueError(
          f"Expected {self._observation_dtype.name} observations "
          f"[{self._num_lifetimes}, *batch, "
          f"{', '.join(map(str, self._observation_shape))}], got "
          f"{observation.dtype.name} {observation.shape}.")
    batch_shape = tf.shape(observation)[1:1 + batch_rank]
    flat_shape = [self._num_lifetimes, -1, *self._observation_shape]
    observation = tf.reshape(observation, flat_shape)
    if self._torso.kind == torsos.TABULAR:
      outputs = layers.gather_rows(params["table"],
                                   tf.cast(observation, tf.int32))
      policy, prediction, baseline = tf.split(
          outputs, [self._num_actions, self._prediction_size, 1], axis=-1)
    else:
      hidden = self._torso_features(params, observation)
      policy, prediction, baseline = (
          layers.dense(hidden, params[f"{head}/w"], params[f"{head}/b"])
          for head in _HEADS)

    def unflatten(x):
      shape = tf.concat([[self._num_lifetimes], batch_shape, [x.shape[-1]]], 0)
      return tf.reshape(x, shape)

    return types.AgentOutput(
        policy_logits=unflatten(policy),
        prediction_logits=unflatten(prediction),
        baseline=unflatten(baseline)[..., 0])

  def _torso_features(self, params: Params,
                      observation: tf.Tensor) -> tf.Tensor:
    """The torso's output `[L, N, D]` for flat observations `[L, N, *obs]`."""
    dtype = params["policy/w"].dtype
    x = tf.cast(observation, dtype)
    if observation.dtype == tf.uint8:
      x = x / 255.0
    for i, stride in enumerate(self._torso.conv_strides):
      x = tf.nn.relu(
          layers.conv2d(x, params[f"conv_{i}/w"], params[f"conv_{i}/b"], stride,
                        self._torso.padding, self._per_lifetime_convs))
    x = tf.reshape(x, [self._num_lifetimes, -1, math.prod(x.shape[2:])])
    for i in range(len(self._torso.dense_sizes)):
      x = tf.nn.relu(
          layers.dense(x, params[f"dense_{i}/w"], params[f"dense_{i}/b"]))
    return x

  def __call__(self, observation: tf.Tensor) -> types.AgentOutput:
    """`apply` with the stored theta (gradients flow to the variables)."""
    return self.apply(self._params, observation)

  def assign(self, params: Params) -> None:
    """Writes `params` (e.g. theta_K of a meta-step) into the variables."""
    if set(params) != set(self._params):
      raise ValueError(f"Expected parameters {sorted(self._params)}, got "
                       f"{sorted(params)}.")
    for key, variable in self._params.items():
      variable.assign(params[key])


class MaskedActionsAgent(AgentNetwork):
  """An agent whose environment tells, in each observation, which of its
  actions the lifetime has (a grid world with a sampled action space, where a
  MOVE lifetime has the first 9 of 18: `envs.grid_world.SampledInstance`).

  `split_observation` maps `[L, *batch, *obs]` observations to those the
  network reads (the constructor's `observation_shape`) and `[L, *batch]`
  bool, the lifetime has all `num_actions` actions; otherwise only the first
  `num_shared_actions`. The other actions' logits are MASKED_LOGIT, so every
  consumer of the policy logits (acting, the update, Eq. 4's entropy) sees the
  lifetime's own action space, and those logits get no gradient.
  """

  def __init__(self, split_observation: Callable[
      [tf.Tensor], Tuple[tf.Tensor, tf.Tensor]], num_shared_actions: int,
               **kwargs):
    """`split_observation`, `num_shared_actions`: see the class docstring;
    `kwargs`: AgentNetwork's."""
    super().__init__(**kwargs)
    self._split_observation = split_observation
    self._num_shared_actions = num_shared_actions

  def apply(self, params: Params, observation: tf.Tensor) -> types.AgentOutput:
    """AgentNetwork.apply on the network's part of `observation`, with the
    logits of the actions the lifetime lacks set to MASKED_LOGIT."""
    observation, all_actions = self._split_observation(
        tf.convert_to_tensor(observation))
    out = super().apply(params, observation)
    legal = all_actions[..., None] | (
        tf.range(self.num_actions) < self._num_shared_actions)
    return out._replace(policy_logits=tf.where(
        legal, out.policy_logits,
        tf.constant(MASKED_LOGIT, out.policy_logits.dtype)))


def select_lifetimes(mask: tf.Tensor, new, old):
  """Per-lifetime choice between two nests of `[L, ...]` tensors.

  Used to reset some lifetimes:
  `select_lifetimes(ended, agent.init_params(seed), params)` re-initialises the
  lifetimes where `ended` is True. Works for any nest with a leading lifetime
  axis (parameters, optimiser state).

  Args:
    mask: `[L]` bool, True where the result takes `new`.
    new: nest of `[L, ...]` tensors.
    old: nest of `[L, ...]` tensors with the structure of `new`.

  Returns:
    The nest of `old`'s structure with lifetime l from `new` where mask[l].
  """

  def select(new_value, old_value):
    old_value = tf.convert_to_tensor(old_value)
    shape = [-1] + [1] * (old_value.shape.rank - 1)
    return tf.where(tf.reshape(mask, shape), new_value, old_value)

  return tf.nest.map_structure(select, new, old)


def _as_seed(seed: Union[int, Sequence[int], tf.Tensor]) -> tf.Tensor:
  """A `[2]` int32 stateless seed from an int or a pair."""
  seed = tf.convert_to_tensor(seed, dtype=tf.int32)
  if seed.shape.rank == 0:
    seed = tf.stack([seed, 0])
  return seed
