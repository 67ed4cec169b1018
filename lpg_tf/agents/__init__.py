"""Agent networks of Table 3 and Table 4, batched over the lifetimes of a group.

  agent = lpg_tf.agents.build_agent(env.spec, num_lifetimes=8, seed=0)
  out = agent.apply(params, observation)   # pure in params: [L, *batch, ...]
  lpg_tf.agents.preset_for("random/dense") # Table 3: architecture, optimiser
"""

from lpg_tf.agents.networks import AgentNetwork, Params, select_lifetimes
from lpg_tf.agents.presets import (ADAM, ATARI, MINATAR, SGD, TABLE_3,
                                   AgentPreset, MetaTestPreset, build_agent,
                                   preset_for)
from lpg_tf.agents.torsos import (TorsoSpec, atari, grid_conv, minatar, mlp,
                                  tabular)
