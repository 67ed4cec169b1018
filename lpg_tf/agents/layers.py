"""Layer math batched over lifetimes: every parameter has a leading axis L.

Each of the L lifetimes of an environment group has its own weights, so a dense
layer is an einsum with weights `[L, in, out]` and a conv layer runs each
lifetime's filters `[L, kh, kw, C, out]` on its own inputs (DESIGN.md,
Conventions). Both are pure functions of tensors, differentiable
twice and compilable with XLA on CPU, so the learner can differentiate through
K functional updates of the parameters (DESIGN.md, idiom 1).
"""

from typing import Sequence

import tensorflow as tf


def fan_in_truncated_normal(seed: tf.Tensor, shape: Sequence[int],
                            fan_in: int) -> tf.Tensor:
  """Sonnet's default weight initialiser, drawn statelessly.

  snt.Linear and snt.Conv2D draw weights from a truncated normal with standard
  deviation 1 / sqrt(fan_in), cut at two standard deviations; this is the same
  distribution from a `[2]` int32 stateless seed, so every lifetime on the
  leading axis of `shape` gets its own draw and the whole draw is a
  deterministic function of the seed.

  Args:
    seed: `[2]` int32 stateless seed.
    shape: `[L, ...]`, the shape of the weights of all lifetimes.
    fan_in: the number of inputs of one output unit.

  Returns:
    float32 tensor of `shape`.
  """
  return tf.random.stateless_truncated_normal(
      shape, seed=seed, stddev=1.0 / fan_in**0.5)


def dense(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
  """A dense layer with per-lifetime weights.

  Args:
    x: `[L, N, in]` inputs.
    w: `[L, in, out]` weights.
    b: `[L, out]` biases.

  Returns:
    `[L, N, out]`, x w + b for each lifetime.
  """
  return tf.einsum("lni,lio->lno", x, w) + b[:, tf.newaxis, :]


# Up to this many lifetimes, `conv2d(..., per_lifetime=True)` runs one
# `tf.nn.conv2d` per lifetime; more take im2col and one batched matmul. On a
# meta-step of random/very_dense's C(32-16-16)-D(256) torso (K = 5 inner
# updates, 320 frames of 11 x 11 x 4 per lifetime, 2-core CPU, without XLA),
# per-lifetime convolutions ran 4.9x (L = 2) and 5.1x (L = 8) faster than
# im2col at 44% and 32% of its peak memory: im2col keeps every patch, 9x a
# layer's input, for the second-order gradient, a convolution its input. The
# graph grows with every lifetime's convolutions, so large groups
# (configs/paper.py's 64) keep im2col.
MAX_LIFETIMES_PER_CONV = 8


def conv2d(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, stride: int,
           padding: str, per_lifetime: bool = False) -> tf.Tensor:
  """A 2D convolution with per-lifetime filters.

  Lifetime l's output equals `tf.nn.conv2d(x[l], w[l], stride, padding) + b[l]`.
  It is computed so where `per_lifetime` is set and there are at most
  MAX_LIFETIMES_PER_CONV lifetimes: the fast way without XLA. Otherwise as
  im2col and one dense layer over all lifetimes (`conv2d_im2col`): with XLA
  on CPU, per-lifetime convolutions made configs/appendix_a.py's meta-step
  3.3x slower than im2col (0.027 against 0.089 meta-steps/s), their gradients
  inside the K-update loop compiling to slow convolution code.

  Args:
    x: `[L, N, H, W, C]` channels-last inputs.
    w: `[L, kh, kw, C, out]` filters.
    b: `[L, out]` biases.
    stride: the stride in both spatial dimensions.
    padding: "SAME" or "VALID".
    per_lifetime: one convolution per lifetime (for graphs run without XLA).

  Returns:
    `[L, N, H', W', out]`.
  """
  num_lifetimes = w.shape[0]
  if not per_lifetime or num_lifetimes > MAX_LIFETIMES_PER_CONV:
    return conv2d_im2col(x, w, b, stride, padding)
  outputs = [tf.nn.conv2d(x[l], w[l], stride, padding)
             for l in range(num_lifetimes)]
  return tf.stack(outputs) + b[:, tf.newaxis, tf.newaxis, tf.newaxis, :]


def conv2d_im2col(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, stride: int,
                  padding: str) -> tf.Tensor:
  """`conv2d`'s values as im2col, then a dense layer with per-lifetime filters
  `[L, kh * kw * C, out]`: a program of fixed size for any number of
  lifetimes, which keeps every patch for its gradient."""
  num_lifetimes, kernel_h, kernel_w, channels, out = w.shape
  height, width = x.shape[2], x.shape[3]
  patches = im2col(
      tf.reshape(x, [-1, height, width, channels]), kernel_h, kernel_w, stride,
      padding)
  out_h, out_w, patch_size = patches.shape[1:]
  y = dense(
      tf.reshape(patches, [num_lifetimes, -1, patch_size]),
      tf.reshape(w, [num_lifetimes, patch_size, out]), b)
  return tf.reshape(y, [num_lifetimes, -1, out_h, out_w, out])


def im2col(images: tf.Tensor, kernel_h: int, kernel_w: int, stride: int,
           padding: str) -> tf.Tensor:
  """The patches a conv layer sees, one strided slice per kernel position.

  A patch is laid out `[kh, kw, C]` in row-major order, the order of a
  `tf.nn.conv2d` filter `[kh, kw, C, out]`, and SAME pads like `tf.nn.conv2d`
  (the extra row or column after). This does what `tf.image.extract_patches`
  does, but slices and their gradients (pads) are cheap on CPU with and without
  XLA, where extract_patches and its scatter gradient were 2-3 times slower for
  a whole Table 3 conv agent.

  Args:
    images: `[M, H, W, C]`.
    kernel_h: kernel height kh.
    kernel_w: kernel width kw.
    stride: the stride in both spatial dimensions.
    padding: "SAME" or "VALID".

  Returns:
    `[M, H', W', kh * kw * C]`.
  """
  height, width = images.shape[1], images.shape[2]
  out_h = conv_output_size(height, kernel_h, stride, padding)
  out_w = conv_output_size(width, kernel_w, stride, padding)
  if padding == "SAME":
    pad_h = max((out_h - 1) * stride + kernel_h - height, 0)
    pad_w = max((out_w - 1) * stride + kernel_w - width, 0)
    images = tf.pad(images, [[0, 0], [pad_h // 2, pad_h - pad_h // 2],
                             [pad_w // 2, pad_w - pad_w // 2], [0, 0]])
  span_h = (out_h - 1) * stride + 1
  span_w = (out_w - 1) * stride + 1
  return tf.concat([
      images[:, i:i + span_h:stride, j:j + span_w:stride, :]
      for i in range(kernel_h)
      for j in range(kernel_w)
  ], axis=-1)


def conv_output_size(size: int, kernel: int, stride: int, padding: str) -> int:
  """The spatial output size of a conv layer along one dimension."""
  if padding == "SAME":
    return -(-size // stride)
  if padding == "VALID":
    return -(-(size - kernel + 1) // stride)
  raise ValueError(f"padding must be 'SAME' or 'VALID', got {padding!r}")


def gather_rows(table: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
  """Row `index[l, n]` of lifetime l's table, for every lifetime and sample.

  `tf.gather(..., batch_dims=1)` would do this, but XLA rejects its second-order
  gradient (DESIGN.md, idiom 4), and a one-hot matmul over all S states is slow
  for the larger tabular grid worlds (S reaches 8064). So the tables are
  flattened to `[L * S, F]` and gathered at the flat indices `l * S + s`, whose
  gradient (a segment sum) and second-order gradient (a gather) XLA compiles.

  Args:
    table: `[L, S, F]`.
    index: `[L, N]` int32 in [0, S).

  Returns:
    `[L, N, F]`.
  """
  num_lifetimes, num_states, features = table.shape
  offsets = tf.range(num_lifetimes, dtype=index.dtype)[:, tf.newaxis] * (
      num_states)
  flat = tf.reshape(table, [num_lifetimes * num_states, features])
  return tf.gather(flat, index + offsets)
