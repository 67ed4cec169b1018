"""Static shape checks at the boundaries where a wrong axis would be silent.

RLax asserts ranks and shapes at the top of each function with chex; this is the
TensorFlow counterpart on static shapes, so a check costs nothing at run time and
fails at trace time, before any compute. A `None` in an expected shape, or an
unknown static dimension, matches anything; a string names a dimension that must
be equal wherever it appears in one call (e.g. "L" for lifetimes).
"""

from typing import Dict, List, Optional, Sequence, Tuple, Union

import tensorflow as tf

from lpg_tf import types

Dim = Union[int, str, None]
Expected = Tuple[str, Optional[tf.Tensor], Sequence[Dim]]


def assert_shapes(where: str,
                  expected: Sequence[Expected],
                  prefix_only: bool = False) -> None:
  """Raises ValueError unless every tensor has its expected shape.

  Args:
    where: the function checking, for the message.
    expected: `(name, tensor, shape)` triples; a None tensor is skipped.
    prefix_only: check only the leading `len(shape)` axes (trailing feature
      axes free) instead of the whole shape.

  Raises:
    ValueError: a rank or a dimension differs, or a named dimension takes two
      values, e.g. "meta_objective: critic_values has shape [2, 6, 4], expected
      [L=2, T+1=6, B=3]".
  """
  bound: Dict[str, int] = {}
  for name, tensor, shape in expected:
    if tensor is None:
      continue
    actual = tensor.shape
    if actual.rank is None:
      continue
    if (actual.rank < len(shape)) if prefix_only else (actual.rank != len(shape)):
      raise ValueError(f"{where}: {name} has shape {actual}, expected rank "
                       f"{'>= ' if prefix_only else ''}{len(shape)} "
                       f"({_describe(shape, bound)})")
    for dim, size in zip(shape, actual.as_list()):
      if dim is None or size is None:
        continue
      if isinstance(dim, str):
        if dim in bound and bound[dim] != size:
          raise ValueError(f"{where}: {name} has shape {actual}, expected "
                           f"{_describe(shape, bound)}")
        bound.setdefault(dim, size)
      elif dim != size:
        raise ValueError(f"{where}: {name} has shape {actual}, expected "
                         f"{_describe(shape, bound)}")


def trajectory_and_outputs(trajectory: types.Trajectory,
                           outputs: types.AgentOutput) -> List[Expected]:
  """What `assert_shapes` expects of a trajectory `[L, T, B]` and the agent's
  outputs on its T + 1 observations `[L, T+1, B, ...]`."""
  return [
      ("trajectory.action", trajectory.action, ["L", "T", "B"]),
      ("trajectory.reward", trajectory.reward, ["L", "T", "B"]),
      ("trajectory.discount", trajectory.discount, ["L", "T", "B"]),
      ("outputs.policy_logits", outputs.policy_logits, ["L", "T+1", "B", None]),
      ("outputs.prediction_logits", outputs.prediction_logits,
       ["L", "T+1", "B", None]),
  ]


def _describe(shape: Sequence[Dim], bound: Dict[str, int]) -> str:
  parts = []
  for dim in shape:
    if isinstance(dim, str) and dim in bound:
      parts.append(f"{dim}={bound[dim]}")
    else:
      parts.append("?" if dim is None else str(dim))
  return "[" + ", ".join(parts) + "]"
