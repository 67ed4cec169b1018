"""Matmul FLOPs of a compiled program, counted from its HLO text.

XLA's cost analysis is not exposed for a `tf.function`, but the program's HLO
is (`experimental_get_compiler_ir`). `matmul_flops` adds up the floating-point
operations of every `dot` and `convolution` instruction (2 per multiply-add:
2 x the output's elements x the elements each one contracts, for a
convolution its kernel's spatial extent x its input features, padding
included), each multiplied by the trip counts of the `while` loops around it.
Element-wise work is not counted: the figure is the
matmul work of the program, what the rate of a dense matmul is comparable with
(issue 13's "achieved FLOP/s of the meta-step against a dense matmul").

The text is the HLO that TensorFlow hands XLA (`stage="hlo"`: lowering only,
nothing compiled), before XLA's passes fuse loop conditions. A loop's trip
count is read from its condition: TensorFlow's loops (while loops, scans and
their gradients, all with a static `maximum_iterations` under XLA) run while a
counter that starts at 0 is less (`direction=LT`) than a bound, and the
bound is an integer constant, an element of the loop's initial tuple that is
one, or the final counter of another loop (a gradient loop runs as often as
its forward loop). The smallest such bound is the count. A gradient loop
nested in another loop's gradient reads its bound from a stack at run time;
its count is its forward loop's, found by the name TensorFlow gives the
gradient's condition function (the forward's name plus `_grad_<id>`). A loop
whose count none of this gives raises ValueError rather than return a wrong
count.
"""

import math
import re
from typing import Dict, List, NamedTuple, Optional, Tuple

_COMPUTATION = re.compile(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s+\(.*\)\s*->\s*.*\{\s*$")
_CALLED = re.compile(
    r"(?:calls|to_apply|body|condition|true_computation|false_computation)"
    r"=%?([\w.\-]+)")
_BRANCHES = re.compile(r"branch_computations=\{([^}]*)\}")


class Instruction(NamedTuple):
  """One HLO instruction: its name, result shape, opcode and the rest of its
  line (operands and attributes)."""
  name: str
  shape: List[int]
  opcode: str
  rest: str


def _dims(shape: str) -> List[int]:
  """`f32[8,16]` -> [8, 16]; a scalar -> []; a tuple -> []."""
  if shape.startswith("(") or "[" not in shape:
    return []
  inside = shape[shape.index("[") + 1:shape.index("]")]
  return [int(d) for d in inside.split(",") if d]


def _closing(text: str, depth: int) -> int:
  """The index in `text` where the parentheses open so far (`depth` of
  them) are all closed."""
  for end, char in enumerate(text):
    depth += {"(": 1, ")": -1}.get(char, 0)
    if depth == 0:
      return end
  raise ValueError(f"unbalanced parentheses in HLO text: {text[:80]!r}")


def _instruction(line: str) -> Optional[Instruction]:
  """Parses `[ROOT] %name = <shape> opcode(<operands>), <attributes>`."""
  left, equals, right = line.strip().partition(" = ")
  if not equals or not right:
    return None
  name = left.split()[-1].lstrip("%")
  if right.startswith("("):  # A tuple shape: up to its closing parenthesis.
    end = _closing(right, 0)
    shape, after = right[:end + 1], right[end + 1:]
  else:
    shape, _, after = right.partition(" ")
  opcode = re.match(r"\s*([\w\-]+)\(", after)
  if not opcode:
    return None
  return Instruction(name, _dims(shape), opcode.group(1),
                     after[opcode.end():])


def parse_computations(hlo: str) -> Dict[str, List[Instruction]]:
  """The module's computations by name, each its list of instructions."""
  computations: Dict[str, List[Instruction]] = {}
  current: Optional[List[Instruction]] = None
  for line in hlo.splitlines():
    header = _COMPUTATION.match(line)
    if header:
      current = computations.setdefault(header.group(1), [])
      continue
    if line.strip() == "}":
      current = None
      continue
    instruction = _instruction(line) if current is not None else None
    if instruction:
      current.append(instruction)
  if not computations:
    raise ValueError("no HLO computation found in the text")
  return computations


def _entry_name(hlo: str) -> str:
  for line in hlo.splitlines():
    if line.startswith("ENTRY"):
      return _COMPUTATION.match(line).group(1)
  raise ValueError("the HLO module has no ENTRY computation")


def _dot_flops(instruction: Instruction,
               shapes: Dict[str, List[int]]) -> float:
  """2 x output elements x contracted elements of one dot."""
  lhs = shapes[_operands(instruction)[0]]
  contracting = re.search(r"lhs_contracting_dims=\{([\d,]*)\}",
                          instruction.rest).group(1)
  contracted = math.prod(lhs[int(d)] for d in contracting.split(",") if d)
  return 2.0 * math.prod(instruction.shape) * contracted


def _convolution_flops(instruction: Instruction,
                       shapes: Dict[str, List[int]]) -> float:
  """2 x output elements x (kernel spatial extent x kernel input features) of
  one convolution. Its gradients are convolutions too: TensorFlow's
  Conv2DBackpropFilter, for one, takes the output gradient as the kernel
  (`f01b_i01o->01bf`), whose `i` is then the batch it contracts."""
  kernel = shapes[_operands(instruction)[1]]
  labels = re.search(r"dim_labels=\w+_(\w+)->", instruction.rest).group(1)
  contracted = math.prod(size for size, label in zip(kernel, labels)
                         if label.isdigit() or label == "i")
  return 2.0 * math.prod(instruction.shape) * contracted


def _operands(instruction: Instruction) -> List[str]:
  """Names of an instruction's operands, in order: the `%name`s up to the
  parenthesis that closes its operand list (tuple shapes nest parentheses)."""
  end = _closing(instruction.rest, 1)
  return re.findall(r"%([\w.\-]+)", instruction.rest[:end])


def _condition(loop: Instruction) -> str:
  return re.search(r"condition=%?([\w.\-]+)", loop.rest).group(1)


def _function_key(computation: str) -> str:
  """The TensorFlow function a computation was lowered from:
  `while_cond_5169_rewritten_const_1__.4039` -> `while_cond_5169_rewritten`."""
  return re.sub(r"_const_\d+__\.\d+$", "", computation)


def _index(instruction: Instruction) -> int:
  """A get-tuple-element's index (not a tuple shape's `/*index=5*/`)."""
  return int(re.search(r"\),\s*index=(\d+)", instruction.rest).group(1))


class _Loops:
  """Trip counts of a module's while loops (module docstring)."""

  def __init__(self, computations: Dict[str, List[Instruction]]):
    self._computations = computations
    self._by_name = {name: {i.name: i for i in instructions}
                     for name, instructions in computations.items()}
    self._memo: Dict[str, Tuple[int, int]] = {}
    # Each while loop's (computation, instruction), by the name its
    # condition's TensorFlow function carries (`_function_key`).
    self._loops_by_key: Dict[str, List[Tuple[str, Instruction]]] = {}
    for name, instructions in computations.items():
      for instruction in instructions:
        if instruction.opcode == "while":
          for called in self._reachable(_condition(instruction)):
            self._loops_by_key.setdefault(_function_key(called), []).append(
                (name, instruction))

  def trip_count(self, computation: str, loop: Instruction) -> int:
    return self._counted(computation, loop)[0]

  def _counted(self, computation: str, loop: Instruction) -> Tuple[int, int]:
    """(trip count, index of the counter in the loop's tuple)."""
    if loop.name not in self._memo:
      self._memo[loop.name] = self._read(computation, loop)
    return self._memo[loop.name]

  def _read(self, computation: str, loop: Instruction) -> Tuple[int, int]:
    bounds = []
    for name in self._reachable(_condition(loop)):
      table = self._by_name[name]
      for compare in self._computations[name]:
        if (compare.opcode != "compare"
            or "direction=LT" not in compare.rest):
          continue
        counter, bound = (table.get(o) for o in _operands(compare)[:2])
        if counter is None or counter.opcode != "get-tuple-element":
          continue
        value = self._scalar(name, bound, loop, computation)
        if value is not None:
          bounds.append((value, _index(counter)))
    if bounds:
      return min(bounds)
    forward = self._forward_loop(loop)
    if forward is None:
      raise ValueError(f"cannot read the trip count of while loop {loop.name}")
    # The counter's index is the gradient loop's own; only the count is used.
    return self._counted(*forward)[0], -1

  def _forward_loop(self, loop: Instruction
                    ) -> Optional[Tuple[str, Instruction]]:
    """The forward loop of a gradient loop whose count is read from a stack
    at run time: TensorFlow names the gradient's condition function after
    the forward's (`while_cond_5169_rewritten` and
    `while_cond_5169_rewritten_grad_12411`), and both run as many
    iterations."""
    for called in self._reachable(_condition(loop)):
      key = _function_key(called)
      if "_grad_" not in key:
        continue
      forward_key = re.sub(r"_grad_\d+", "", key)
      for candidate in self._loops_by_key.get(forward_key, []):
        if candidate[1].name != loop.name:
          return candidate
    return None

  def _reachable(self, computation: str) -> List[str]:
    """`computation` and every computation it calls, transitively."""
    found, pending = [], [computation]
    while pending:
      name = pending.pop()
      if name not in found:
        found.append(name)
        for instruction in self._computations[name]:
          pending.extend(_CALLED.findall(instruction.rest))
    return found

  def _scalar(self, computation: str, instruction: Optional[Instruction],
              loop: Instruction, parent: str) -> Optional[int]:
    """The integer value of `instruction` (a constant, a loop's initial
    tuple element or another loop's final counter), or None."""
    if instruction is None or instruction.shape:
      return None
    table = self._by_name[computation]
    if instruction.opcode == "constant":
      value = re.match(r"\s*(-?\d+)\)", instruction.rest)
      return int(value.group(1)) if value else None
    if instruction.opcode in ("copy", "convert", "reshape"):
      return self._scalar(computation, table.get(_operands(instruction)[0]),
                          loop, parent)
    if instruction.opcode != "get-tuple-element":
      return None
    source = table.get(_operands(instruction)[0])
    if source is None:
      return None
    if source.opcode == "parameter" and computation != parent:
      # An element of the loop's own tuple: its initial value.
      initial = self._by_name[parent].get(_operands(loop)[0])
      if initial is None or initial.opcode != "tuple":
        return None
      element = _operands(initial)[_index(instruction)]
      return self._scalar(parent, self._by_name[parent].get(element), loop,
                          parent)
    if source.opcode == "while":
      trips, counter = self._counted(computation, source)
      return trips if counter == _index(instruction) else None
    if source.opcode == "tuple":
      element = _operands(source)[_index(instruction)]
      return self._scalar(computation, table.get(element), loop, parent)
    return None


def matmul_flops(hlo: str) -> float:
  """Matmul FLOPs of one run of the HLO module `hlo` (module docstring)."""
  computations = parse_computations(hlo)
  loops = _Loops(computations)
  memo: Dict[str, float] = {}

  def flops_of(name: str) -> float:
    if name in memo:
      return memo[name]
    instructions = computations[name]
    shapes = {i.name: i.shape for i in instructions}
    total = 0.0
    for instruction in instructions:
      if instruction.opcode == "dot":
        total += _dot_flops(instruction, shapes)
      elif instruction.opcode == "convolution":
        total += _convolution_flops(instruction, shapes)
      elif instruction.opcode == "while":
        body = re.search(r"body=%?([\w.\-]+)", instruction.rest).group(1)
        total += loops.trip_count(name, instruction) * flops_of(body)
      elif instruction.opcode == "conditional":
        branches = _BRANCHES.search(instruction.rest)
        names = ([b.strip().lstrip("%") for b in branches.group(1).split(",")]
                 if branches else _CALLED.findall(instruction.rest))
        total += max(flops_of(b) for b in names)
      else:
        total += sum(flops_of(c) for c in _CALLED.findall(instruction.rest))
    memo[name] = total
    return total

  return flops_of(_entry_name(hlo))
