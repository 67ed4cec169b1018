"""Torso specifications: the agent architectures of Table 3 and Table 4 (and
MinAtar's) as data.

A `TorsoSpec` says which layers sit between an observation and the agent's three
linear heads (policy logits, prediction logits, baseline). It is plain data, so
presets, configs and tests can compare and print it; `AgentNetwork` builds the
parameters from it. `notation` writes a spec back in the paper's notation
("C(32-16-16)-D(256)", "Tabular").
"""

from typing import NamedTuple, Sequence, Tuple

TABULAR = "tabular"
MLP = "mlp"
CONV = "conv"

# The paper gives no kernel size for the conv torsos of Table 3. The random grid
# worlds are small (at most 13 x 13) and an object's effect is local, so we use
# 3 x 3 filters, stride 1 and SAME padding, which keep the grid's size.
GRID_KERNEL = 3
GRID_STRIDE = 1


class TorsoSpec(NamedTuple):
  """The layers of an agent's torso.

  Attributes:
    kind: TABULAR (no torso: the agent is a table over state indices, Appendix
      A.1), MLP (dense layers on the flattened observation) or CONV (conv layers
      on a `[H, W, C]` observation, then flatten, then dense layers).
    conv_channels: output channels of each conv layer, in order.
    conv_kernels: square kernel size of each conv layer.
    conv_strides: stride of each conv layer.
    padding: "SAME" or "VALID", for every conv layer.
    dense_sizes: units of each dense layer after the (flattened) conv layers.
      Every conv and dense layer is followed by a ReLU (Appendix B.1).
  """
  kind: str
  conv_channels: Tuple[int, ...] = ()
  conv_kernels: Tuple[int, ...] = ()
  conv_strides: Tuple[int, ...] = ()
  padding: str = "SAME"
  dense_sizes: Tuple[int, ...] = ()

  @property
  def notation(self) -> str:
    """The architecture in the notation of Table 3, e.g. "C(16)-D(32)"."""
    if self.kind == TABULAR:
      return "Tabular"
    # Table 3 groups its (3 x 3, stride 1) grid convs into one C(N1-N2-...);
    # Table 4 lists the Atari convs one by one.
    parts = []
    if self == grid_conv(self.conv_channels, self.dense_sizes):
      parts.append("C(" + "-".join(str(c) for c in self.conv_channels) + ")")
    else:
      parts.extend(f"C({c})" for c in self.conv_channels)
    parts.extend(f"D({d})" for d in self.dense_sizes)
    return "-".join(parts)


def tabular() -> TorsoSpec:
  """No torso: a table of logits and baseline per state index (Appendix A.1)."""
  return TorsoSpec(kind=TABULAR)


def mlp(dense_sizes: Sequence[int]) -> TorsoSpec:
  """Dense layers with ReLU on the flattened observation: D(32) is mlp([32])."""
  return TorsoSpec(kind=MLP, dense_sizes=tuple(dense_sizes))


def grid_conv(conv_channels: Sequence[int],
              dense_sizes: Sequence[int]) -> TorsoSpec:
  """Table 3's conv torsos: C(N1-N2-...)-D(M) on a random grid world.

  Each conv layer is 3 x 3, stride 1, SAME padding (our choice; see
  GRID_KERNEL), followed by ReLU; the result is flattened and fed to the dense
  layers.
  """
  num_convs = len(conv_channels)
  return TorsoSpec(
      kind=CONV,
      conv_channels=tuple(conv_channels),
      conv_kernels=(GRID_KERNEL,) * num_convs,
      conv_strides=(GRID_STRIDE,) * num_convs,
      padding="SAME",
      dense_sizes=tuple(dense_sizes))


def atari() -> TorsoSpec:
  """Table 4's C(32)-C(64)-C(64)-D(512): the Nature-DQN torso.

  8 x 8 stride 4, 4 x 4 stride 2, 3 x 3 stride 1 convs (VALID padding), then a
  dense layer of 512 units; an `[84, 84, 4]` frame stack gives 7 x 7 x 64 before
  the dense layer.
  """
  return TorsoSpec(
      kind=CONV,
      conv_channels=(32, 64, 64),
      conv_kernels=(8, 4, 3),
      conv_strides=(4, 2, 1),
      padding="VALID",
      dense_sizes=(512,))


def minatar() -> TorsoSpec:
  """The MinAtar agent's C(16)-D(128) (Young & Tian, 2019): one 3 x 3 conv of 16
  filters, stride 1, VALID padding (PyTorch's default, as in MinAtar's own
  agents), then a dense layer of 128 units; a `[10, 10, C]` state gives
  8 x 8 x 16 = 1024 features before the dense layer.
  """
  return TorsoSpec(
      kind=CONV,
      conv_channels=(16,),
      conv_kernels=(3,),
      conv_strides=(1,),
      padding="VALID",
      dense_sizes=(128,))
