"""Agent architectures and optimisers of Table 3 (training environments) and
Table 4 (Atari).

`TABLE_3[env_name]` gives the architecture and inner optimiser of each training
environment's agent; the learning rates, KL costs and lifetime lengths of the
same table are meta-training settings (`lpg_tf.meta.lifetime_settings`).
`build_agent` makes the agent network an environment's lifetimes use.
"""

import functools
import re
from typing import NamedTuple, Optional, Sequence, Tuple, Union

import tensorflow as tf

from lpg_tf.agents import networks
from lpg_tf.agents import torsos
from lpg_tf.envs import base
from lpg_tf.envs import grid_world

SGD = "sgd"
ADAM = "adam"


class AgentPreset(NamedTuple):
  """The agent half of one row of Table 3 (the bandit grid and lifetime length
  are meta-training settings: `lpg_tf.meta.lifetime_settings`).

  Attributes:
    torso: the agent architecture.
    optimiser: SGD or ADAM, the agent's inner optimiser.
  """
  torso: torsos.TorsoSpec
  optimiser: str


class MetaTestPreset(NamedTuple):
  """The agent trained by a meta-learned rule on a meta-test suite: Table 4 for
  Atari, our choice for MinAtar (`MINATAR`).

  Attributes:
    torso: the agent architecture.
    optimiser: the agent's optimiser.
    learning_rate: alpha_lr.
    kl_cost: alpha_y.
    discount: gamma.
    trajectory_length: steps per trajectory.
    num_envs: parallel environments (the agent's batch size).
    searched_learning_rates: the values of alpha_lr searched on the validation
      games.
    searched_kl_costs: the values of alpha_y searched on the validation games.
  """
  torso: torsos.TorsoSpec
  optimiser: str
  learning_rate: float
  kl_cost: float
  discount: float
  trajectory_length: int
  num_envs: int
  searched_learning_rates: Tuple[float, ...]
  searched_kl_costs: Tuple[float, ...]


_TABULAR = AgentPreset(torsos.tabular(), SGD)
_CONV_GRID = AgentPreset(torsos.grid_conv([16], [32]), ADAM)
_MLP_GRID = AgentPreset(torsos.mlp([32]), ADAM)

TABLE_3 = {
    "tabular/dense": _TABULAR,
    "tabular/sparse": _TABULAR,
    "tabular/long_horizon": _TABULAR,
    "tabular/longer_horizon": _TABULAR,
    "tabular/long_dense": _TABULAR,
    "random/dense": _CONV_GRID,
    "random/long_horizon": _CONV_GRID,
    "random/small": _MLP_GRID,
    "random/small_sparse": _MLP_GRID,  # Table 3's random-grid row "sparse".
    "random/very_dense": AgentPreset(torsos.grid_conv([32, 16, 16], [256]), ADAM),
    "chain/short": _TABULAR,
    "chain/short_noisy": _TABULAR,
    "chain/long": _TABULAR,
    "chain/long_noisy": _TABULAR,
    "chain/distractor": AgentPreset(torsos.mlp([16]), ADAM),
}

ATARI = MetaTestPreset(
    torso=torsos.atari(),
    optimiser=ADAM,
    learning_rate=0.0005,
    kl_cost=0.5,
    discount=0.995,
    trajectory_length=20,
    num_envs=30,
    searched_learning_rates=(0.001, 0.0005, 0.0003),
    searched_kl_costs=(1.0, 0.5, 0.1))

# MinAtar, the fast meta-test (not in the paper): MinAtar's own agent network
# (Young & Tian, 2019), Adam as in Table 4, Table 4's alpha_y and T, gamma 0.99
# as MinAtar's baselines, B = 64 as in meta-training (Section 4.1). alpha_lr
# from A2C's final returns, 2 seeds x 200k steps: Breakout 1.9 / 3.1 / 3.7 /
# 4.2 for 0.0005 / 0.001 / 0.002 / 0.004; 0.002 vs 0.004 on Asterix 0.62 vs
# 0.63, Freeway 7.1 vs 6.0, Seaquest 0.74 vs 1.01, SpaceInvaders 11.0 vs 15.4.
# 0.004 learns faster early on most games, but this rate also serves learned
# rules (Table 4 gives them 0.0005 on Atari) and longer runs, so we keep
# 0.002, A2C's Adam rate on the toy environments too.
MINATAR = MetaTestPreset(
    torso=torsos.minatar(),
    optimiser=ADAM,
    learning_rate=0.002,
    kl_cost=ATARI.kl_cost,
    discount=0.99,
    trajectory_length=ATARI.trajectory_length,
    num_envs=64,
    searched_learning_rates=(0.004, 0.002, 0.001, 0.0005),
    searched_kl_costs=())


def preset_for(env_name: str) -> AgentPreset:
  """Table 3's row for a training environment, e.g. "random/very_dense".

  Raises:
    ValueError: for a name outside Table 3.
  """
  if env_name not in TABLE_3:
    raise ValueError(f"No Table 3 preset for {env_name!r}; known: "
                     f"{', '.join(TABLE_3)}")
  return TABLE_3[env_name]


def build_agent(spec: base.EnvSpec,
                num_lifetimes: int,
                seed: Union[int, Sequence[int], tf.Tensor],
                prediction_size: int = 30,
                torso: Optional[torsos.TorsoSpec] = None,
                per_lifetime_convs: bool = False
               ) -> networks.AgentNetwork:
  """The agent network for L lifetimes of the environment `spec`.

  Args:
    spec: the environment group's spec.
    num_lifetimes: L.
    seed: an int or `[2]` int32 stateless seed for theta_0.
    prediction_size: m, the size of y (30 in the paper).
    torso: the architecture; by default a table when the environment has state
      indices (`spec.num_states` is set), else Table 3's torso for `spec.name`
      (pass `ATARI.torso` for Atari).
    per_lifetime_convs: one convolution per lifetime in a conv torso, for
      graphs run without XLA (`networks.AgentNetwork`).

  Returns:
    An AgentNetwork whose variables hold theta_0.
  """
  sampled = spec.action_space == base.SAMPLED
  network_spec = grid_world.fixed_space_spec(spec) if sampled else spec
  if torso is None:
    if network_spec.num_states is not None:
      torso = torsos.tabular()
    else:
      torso = preset_for(spec.name).torso
  kwargs = dict(
      num_lifetimes=num_lifetimes,
      observation_shape=network_spec.observation_shape,
      observation_dtype=network_spec.observation_dtype,
      num_actions=network_spec.num_actions,
      torso=torso,
      prediction_size=prediction_size,
      num_states=network_spec.num_states,
      seed=seed,
      per_lifetime_convs=per_lifetime_convs,
      name=re.sub(r"\W", "_", spec.name) + "_agent")
  if sampled:  # A MOVE lifetime has the 9 moves only.
    return networks.MaskedActionsAgent(
        functools.partial(grid_world.split_sampled_observation, spec),
        num_shared_actions=grid_world.NUM_MOVES, **kwargs)
  return networks.AgentNetwork(**kwargs)
