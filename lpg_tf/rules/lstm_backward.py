"""A backward-in-time LSTM with episode resets, and its hand-written gradient.

LPG's core (Appendix B.1): processing t = T-1 down to 0,

  (h_t, c_t) = LSTM(x_t, d_t * (h_{t+1}, c_{t+1})),   (h_T, c_T) = 0,

with Sonnet's LSTM cell (gates i, f, g, o; the forget bias folded into b), so the
state is reset wherever step t ends an episode (d_t = 0) and nothing flows across
episodes.

Why a custom gradient: the meta-gradient back-propagates through this LSTM once per
inner update. Under XLA on CPU, the automatic gradient of `tf.scan` ran ~1.5x
slower than TensorFlow's own kernels and kept extra copies of h. Here the
forward loop holds only the recurrent matmul h @ W_h and elementwise work, the
input projection x @ W_x being one large matmul over all T * N steps; each step
of the backward loop does one matmul d_pre @ [W_h; W_x]^T (the recurrent and
the input gradient) and adds its step's share of the weight gradients,
[h_{t+1} d_t, x_t, 1]^T d_pre, so d_pre ([T, N, 4H], the largest tensor of the
gradient) is never stored whole. The gradient is built from differentiable ops,
so higher-order derivatives still work.

Both loops are `_scan`, not `tf.scan`: without XLA, tf.scan first copies every
input sequence into a list and lets up to 10 steps of a strictly sequential
loop be in flight. At bench_tabular's shape (T=20, N=512, H=256) the op's
forward and backward take 127 ms and peak at 129 MiB of tensors, against 136 ms
and 154 MiB with tf.scan (2-core CPU, no XLA; with XLA both take 152 ms).

`portable=True` computes the same values from plain ops only (a forward scan over
the time-reversed steps, TensorFlow's own gradient), for graphs that leave
TensorFlow: tf2onnx 1.17 writes a reverse scan's outputs in the order it visits
the steps, i.e. reversed in time, and gives wrong targets for T > 1.
"""

from typing import Callable, List, Sequence, Tuple

import sonnet as snt
import tensorflow as tf

FORGET_BIAS = 1.0  # Sonnet's LSTM default.


class BackwardLSTM(snt.Module):
  """Sonnet module owning the LSTM weights; `__call__(x, discount) -> h`.

  Weights are named and initialised as `snt.LSTM`'s (w_i, w_h, b; truncated
  normal with stddev 1/sqrt(fan-in); zero biases plus the forget bias), created on
  the first call.
  """

  def __init__(self, hidden_size: int, dtype: tf.DType = tf.float32,
               name: str = "lstm"):
    super().__init__(name=name)
    self._hidden_size = hidden_size
    self._dtype = tf.as_dtype(dtype)

  @property
  def hidden_size(self) -> int:
    return self._hidden_size

  @snt.once
  def _initialize(self, input_size: int) -> None:
    four_h = 4 * self._hidden_size
    self.w_i = tf.Variable(snt.initializers.TruncatedNormal(
        stddev=1.0 / input_size ** 0.5)([input_size, four_h], self._dtype),
                           name="w_i")
    self.w_h = tf.Variable(snt.initializers.TruncatedNormal(
        stddev=1.0 / self._hidden_size ** 0.5)([self._hidden_size, four_h],
                                              self._dtype), name="w_h")
    forget = tf.concat([tf.zeros([self._hidden_size], self._dtype),
                        tf.fill([self._hidden_size],
                                tf.constant(FORGET_BIAS, self._dtype)),
                        tf.zeros([2 * self._hidden_size], self._dtype)], 0)
    self.b = tf.Variable(forget, name="b")

  def create_variables(self, input_size: int) -> None:
    """Creates the weights for inputs of size `input_size` (once)."""
    with self.name_scope:
      self._initialize(input_size)

  def __call__(self, x: tf.Tensor, discount: tf.Tensor, w_out: tf.Tensor,
               b_out: tf.Tensor, portable: bool = False) -> tf.Tensor:
    """`[T, N, I]` inputs and `[T, N]` d_t -> `[T, N, K]` read-outs h @ w_out + b_out.

    `portable`: see `backward_lstm`.
    """
    self.create_variables(x.shape[-1])
    return backward_lstm(x, discount, self.w_i, self.w_h, self.b, w_out, b_out,
                         portable=portable)


def _cell(pre_gates: tf.Tensor, cell_in: tf.Tensor) -> Tuple[tf.Tensor, ...]:
  """Gate activations and the new state from pre-activations `[N, 4H]`."""
  i, f, g, o = tf.split(pre_gates, 4, axis=-1)
  i, f, g, o = tf.sigmoid(i), tf.sigmoid(f), tf.tanh(g), tf.sigmoid(o)
  cell = f * cell_in + i * g
  hidden = o * tf.tanh(cell)
  return hidden, cell, i, f, g, o


def _step(w_h: tf.Tensor):
  """The scan step from t+1 to t: state (h_{t+1}, c_{t+1}, ...) and elements
  (x_t @ W_x + b `[N, 4H]`, d_t `[N]`) -> (h_t, c_t, i_t, f_t, g_t, o_t)."""

  def step(carry, elems):
    hidden_next, cell_next = carry[0], carry[1]
    gx_t, d_t = elems
    hidden_in = hidden_next * d_t[:, None]
    cell_in = cell_next * d_t[:, None]
    return _cell(gx_t + tf.matmul(hidden_in, w_h), cell_in)

  return step


def backward_lstm(x: tf.Tensor, discount: tf.Tensor, w_x: tf.Tensor,
                  w_h: tf.Tensor, b: tf.Tensor, w_out: tf.Tensor,
                  b_out: tf.Tensor, portable: bool = False) -> tf.Tensor:
  """Runs the LSTM from t = T-1 down to 0 with resets, then a linear read-out.

  Returns `h_t @ w_out + b_out`, `[T, N, K]`. The read-out lives inside the op so
  that its gradient can recompute h from the cell state and output gate it keeps
  anyway: a meta-step then holds no extra copy of h per inner update.

  Args:
    x: `[T, N, I]` inputs.
    discount: `[T, N]` d_t, 0 where step t ends an episode.
    w_x: `[I, 4H]` input weights (Sonnet's `w_i`).
    w_h: `[H, 4H]` recurrent weights.
    b: `[4H]` biases, forget bias included.
    w_out: `[H, K]` read-out weights (the identity gives h itself).
    b_out: `[K]` read-out biases.
    portable: the same values from plain ops, differentiated by TensorFlow: a
      forward scan over the steps in reverse order (no hand-written gradient, no
      reverse scan), for graph converters such as tf2onnx.
  """
  if portable:
    return _portable_backward_lstm(x, discount, w_x, w_h, b, w_out, b_out)
  # Variables enter the hand-written gradient as tensors read here: under a
  # replicating strategy a variable is a per-replica wrapper whose component,
  # not the wrapper, is what a tape sees read inside the op.
  weights = [tf.convert_to_tensor(w) for w in (w_x, w_h, b, w_out, b_out)]
  return _backward_lstm(x, discount, *weights)


def backward_lstm_members(x: tf.Tensor, discount: tf.Tensor, w_x: tf.Tensor,
                          w_h: tf.Tensor, b: tf.Tensor, w_out: tf.Tensor,
                          b_out: tf.Tensor) -> tf.Tensor:
  """M backward LSTMs with their own weights, each on its own columns.

  `backward_lstm`'s values for a leading member axis M on every weight, forward
  only: evolution strategies score perturbed copies of eta by their agents'
  returns and never differentiate the rule, so neither the hand-written
  gradient nor TensorFlow's is needed. The recurrent step is one batched
  matmul `[M, n, H] @ [M, H, 4H]`, and the loop `_scan`, as `backward_lstm`'s:
  only h is kept for every step.

  Args:
    x: `[T, M, n, I]` inputs, member m's n columns in `x[:, m]`.
    discount: `[T, M, n]` d_t.
    w_x: `[M, I, 4H]`.
    w_h: `[M, H, 4H]`.
    b: `[M, 4H]`.
    w_out: `[M, H, K]`.
    b_out: `[M, K]`.

  Returns:
    `[T, M, n, K]` read-outs h_t @ w_out + b_out of each member.
  """
  hidden_size = w_h.shape[-2]
  gates_x = tf.einsum("tmni,mig->tmng", x, w_x) + b[None, :, None]
  zeros = tf.zeros_like(gates_x[0])[..., :hidden_size]  # [M, n, H]

  def step(carry, elems):
    hidden_next, cell_next = carry
    gx_t, d_t = elems
    return _cell(gx_t + tf.matmul(hidden_next * d_t[..., None], w_h),
                 cell_next * d_t[..., None])[:2]

  _, (hidden,) = _scan(step, (gates_x, discount), (zeros, zeros),
                       stacked=[True, False], reverse=True)
  return tf.einsum("tmnh,mhk->tmnk", hidden, w_out) + b_out[None, :, None]


def _portable_backward_lstm(x, discount, w_x, w_h, b, w_out, b_out):
  gates_x = tf.einsum("tni,ig->tng", x, w_x) + b
  zeros = tf.zeros_like(gates_x[0])[:, :w_h.shape[0]]  # [N, H]
  step = _step(w_h)
  # Index 0 of the reversed sequences is step T-1: scanning them forwards runs
  # the LSTM from t = T-1 down to 0.
  hidden_reversed, _ = tf.scan(
      lambda carry, elems: step(carry, elems)[:2],
      (tf.reverse(gates_x, [0]), tf.reverse(discount, [0])),
      initializer=(zeros, zeros))
  hidden = tf.reverse(hidden_reversed, [0])
  return tf.einsum("tnh,hk->tnk", hidden, w_out) + b_out


def _scan(step: Callable[[Tuple[tf.Tensor, ...], List[tf.Tensor]],
                          Tuple[tf.Tensor, ...]],
          sequences: Sequence[tf.Tensor], initial: Tuple[tf.Tensor, ...],
          stacked: Sequence[bool], reverse: bool = False
          ) -> Tuple[Tuple[tf.Tensor, ...], List[tf.Tensor]]:
  """`tf.scan(step, sequences, initial, reverse)` reading each step's elements
  straight from `sequences` and running one step at a time (module docstring).

  Args:
    step: (state, elements of one step) -> next state.
    sequences: `[T, ...]` tensors (T static under XLA).
    initial: the state before the first step.
    stacked: for each part of the state, whether to return it stacked over the
      steps.
    reverse: run from step T-1 down to 0.

  Returns:
    The final state, and the stacked parts of the state, each `[T, ...]` in
    step order.
  """
  num_steps = sequences[0].shape[0]
  if num_steps is None:
    num_steps = tf.shape(sequences[0])[0]
  arrays = [tf.TensorArray(part.dtype, size=num_steps, element_shape=part.shape)
            for part, keep in zip(initial, stacked) if keep]

  def body(t, state, arrays):
    index = num_steps - 1 - t if reverse else t
    state = tuple(step(state, [tf.gather(s, index) for s in sequences]))
    kept = [part for part, keep in zip(state, stacked) if keep]
    return t + 1, state, [a.write(index, k) for a, k in zip(arrays, kept)]

  _, state, arrays = tf.while_loop(
      lambda t, *_: t < num_steps, body, (0, tuple(initial), arrays),
      maximum_iterations=num_steps, parallel_iterations=1)
  return state, [a.stack() for a in arrays]


@tf.custom_gradient
def _backward_lstm(x, discount, w_x, w_h, b, w_out, b_out):
  hidden_size, input_size = w_h.shape[0], w_x.shape[0]
  gates_x = tf.einsum("tni,ig->tng", x, w_x) + b
  # Zeros shaped from tensors, not from tf.shape: XLA needs static shapes inside
  # the differentiated loops of a meta-step.
  zero_gates = tf.zeros_like(gates_x[0])  # [N, 4H]
  zeros = zero_gates[:, :hidden_size]  # [N, H]

  _, (hidden, cell, i, f, g, o) = _scan(
      _step(w_h), (gates_x, discount), (zeros,) * 6, stacked=[True] * 6,
      reverse=True)
  outputs = tf.einsum("tnh,hk->tnk", hidden, w_out) + b_out

  def grad(d_outputs):
    # h recomputed as o * tanh(c), so a meta-step keeps only (c, i, f, g, o) of
    # each inner update alive for its backward pass. The state each step
    # received is (h_{t+1}, c_{t+1}), zero after the last step.
    hidden_again = o * tf.tanh(cell)
    d_hidden = tf.einsum("tnk,hk->tnh", d_outputs, w_out)
    d_w_out = tf.einsum("tnh,tnk->hk", hidden_again, d_outputs)
    d_b_out = tf.reduce_sum(d_outputs, axis=[0, 1])
    hidden_next = tf.concat([hidden_again[1:], zeros[None]], axis=0)
    cell_next = tf.concat([cell[1:], zeros[None]], axis=0)
    # One matmul per step gives the gradients of the recurrent input and of
    # x_t: d_pre @ [W_h; W_x]^T, transposed once here rather than every step.
    w_hx_transposed = tf.transpose(tf.concat([w_h, w_x], axis=0))

    # What each step's weight gradients multiply d_pre by: [h_{t+1} d_t, x_t, 1].
    step_inputs = tf.concat([hidden_next * discount[..., None], x,
                             tf.ones_like(discount)[..., None]], axis=-1)

    def backward(carry, elems):
      d_hidden_carry, d_cell_carry, d_weights = carry[0], carry[1], carry[2]
      (dh_out, d_t, c_t, c_next, h_next, i_t, f_t, g_t, o_t, in_t) = elems
      d_h = dh_out + d_hidden_carry
      tanh_c = tf.tanh(c_t)
      d_c = d_cell_carry + d_h * o_t * (1.0 - tf.square(tanh_c))
      cell_in = c_next * d_t[:, None]
      d_pre = tf.concat([
          d_c * g_t * i_t * (1.0 - i_t),
          d_c * cell_in * f_t * (1.0 - f_t),
          d_c * i_t * (1.0 - tf.square(g_t)),
          d_h * tanh_c * o_t * (1.0 - o_t)], axis=-1)
      d_hidden_in, d_x_t = tf.split(tf.matmul(d_pre, w_hx_transposed),
                                    [hidden_size, input_size], axis=-1)
      d_cell_in = d_c * f_t
      d_discount = (tf.reduce_sum(d_hidden_in * h_next, -1)
                    + tf.reduce_sum(d_cell_in * c_next, -1))
      return (d_hidden_in * d_t[:, None], d_cell_in * d_t[:, None],
              d_weights + tf.matmul(in_t, d_pre, transpose_a=True),
              d_discount, d_x_t)

    initial_grads = (zeros, zeros,
                     tf.zeros([hidden_size + input_size + 1, 4 * hidden_size],
                              zeros.dtype),
                     zero_gates[:, 0], zero_gates[:, :input_size])
    # Gradients flow the other way: from t = 0 (which read step 1's state) up.
    (_, _, d_weights, _, _), (d_discount, d_x) = _scan(
        backward, (d_hidden, discount, cell, cell_next, hidden_next, i, f, g,
                   o, step_inputs),
        initial_grads, stacked=[False, False, False, True, True])
    d_w_h, d_w_x, d_b = tf.split(d_weights, [hidden_size, input_size, 1],
                                 axis=0)
    return d_x, d_discount, d_w_x, d_w_h, d_b[0], d_w_out, d_b_out

  return outputs, grad
