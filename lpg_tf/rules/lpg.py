"""Learned Policy Gradient (Oh et al. 2020): the meta-learned update rule eta.

Section 3.1 and Appendix B.1. For every step t of a trajectory the rule reads

  x_t = [r_t, d_t, gamma, pi(a_t|s_t), phi(y(s_t)), phi(y(s_{t+1}))]

where phi (Dense(16)-ReLU-Dense(1)) is one embedding shared by y(s_t) and
y(s_{t+1}). A backward LSTM runs from t = T-1 down to t = 0, its state reset at
terminal steps, and two linear heads on its output h_t give the targets

  pi_hat_t = w_pi . h_t + b_pi        in R          (how to move log pi)
  y_hat_t  = softmax(W_y h_t + b_y)   in [0, 1]^m   (target for y(s_t))

which the agent follows through Eq. 2 (or Eq. 7 with the baseline of Appendix
B.2). The rule never reads values: `RuleInputs.baseline` is ignored.

`y_softmax=False` is Section 4.4's "LPG w/o Softmax(y)": y in R^m is read raw
and y_hat_t = W_y h_t + b_y is unconstrained; the agent then regresses y on
y_hat by squared error (`base.LossConfig.y_softmax`). LPG-V, the variant that
reads a TD(lambda) value instead of y and learns only pi_hat, is
`rules.lpg_v.LPGV`, this network with the y_hat head left out (`_heads`).
"""

from typing import Optional, Sequence

import sonnet as snt
import tensorflow as tf

from lpg_tf import errors
from lpg_tf import shapes
from lpg_tf import types
from lpg_tf.rules import base
from lpg_tf.rules import lstm_backward

HIDDEN_SIZE = 256  # Appendix B.1: "A backward LSTM with 256 units".
PREDICTION_SIZE = 30  # Table 2: m, the size of the prediction vector y.
EMBEDDING_SIZES = (16, 1)  # Appendix B.1: phi = Dense(16)-Dense(1).
NUM_SCALAR_INPUTS = 4  # r_t, d_t, gamma, pi(a_t|s_t).
KIND = "lpg"  # The rule's kind in configs and exports (rules.lpg_v: "lpg_v").


class LPG(snt.Module, base.UpdateRule):
  """The LPG network eta: rule inputs `[T, N, ...]` in, targets out.

  T and N may be unknown when tracing; m is fixed by `prediction_size`. The
  forward pass compiles under `tf.function(jit_compile=True)` and can be
  differentiated through the agent updates it drives (DESIGN.md idioms 1-4).
  """

  def __init__(self,
               hidden_size: int = HIDDEN_SIZE,
               prediction_size: int = PREDICTION_SIZE,
               embedding_sizes: Sequence[int] = EMBEDDING_SIZES,
               use_baseline: bool = False,
               y_head_init_stddev: Optional[float] = None,
               y_softmax: bool = True,
               dtype: tf.DType = tf.float32,
               name: str = "lpg"):
    """Configures the rule; variables are created on the first call.

    Args:
      hidden_size: units of the backward LSTM.
      prediction_size: m, the size of the agent's prediction vector y.
      embedding_sizes: layer sizes of phi; the last one is the size of phi(y).
      use_baseline: give the agent the action-independent baseline of Eq. 7
        (Appendix B.2): the agent subtracts f(s) from pi_hat and regresses f(s)
        on pi_hat. LPG's own outputs do not change.
      y_head_init_stddev: standard deviation of the y_hat head's initial
        weights (truncated normal); None: Sonnet's default 1/sqrt(hidden_size).
        Larger values start eta with targets y_hat that differ from state to
        state, so the agents' y carries information the rule can learn to use
        from the first meta-step (issue 12: with the default, y_hat stays
        uniform). Only the initialisation: an exported rule does not need it.
      y_softmax: y and y_hat on the m-simplex, compared by KL (Eq. 2); False:
        both in R^m, compared by squared error (Section 4.4's ablation).
      dtype: the LSTM's dtype (float64 serves finite-difference tests); the
        other layers take the dtype of their inputs.
      name: module name.
    """
    super().__init__(name=name)
    self._hidden_size = hidden_size
    self._prediction_size = prediction_size
    self._embedding_sizes = tuple(embedding_sizes)
    self._use_baseline = use_baseline
    self._y_softmax = y_softmax
    self._input_size = NUM_SCALAR_INPUTS + 2 * self._embedding_sizes[-1]
    self._embedding = snt.BatchApply(
        snt.nets.MLP(self._embedding_sizes, activation=tf.nn.relu,
                     name="embedding"), num_dims=2)
    self._dtype = tf.as_dtype(dtype)
    self._core = lstm_backward.BackwardLSTM(hidden_size, dtype=self._dtype,
                                            name="lstm")
    self._pi_head = snt.Linear(1, name="pi_head")
    self._y_head = self._make_y_head(y_head_init_stddev)
    self._loss_config = (base.EQ7_LOSS if use_baseline else
                         base.LossConfig())._replace(y_softmax=y_softmax)

  def _make_y_head(self, init_stddev: Optional[float]) -> Optional[snt.Linear]:
    """The y_hat head (m outputs); None in a rule that learns no y_hat."""
    w_init = (None if init_stddev is None else
              snt.initializers.TruncatedNormal(stddev=init_stddev))
    return snt.Linear(self._prediction_size, w_init=w_init, name="y_head")

  def _heads(self) -> list[snt.Linear]:
    """The linear read-outs of h_t, in output order: pi_hat, then y_hat."""
    return [self._pi_head] + ([] if self._y_head is None else [self._y_head])

  @property
  def hidden_size(self) -> int:
    return self._hidden_size

  @property
  def prediction_size(self) -> int:
    return self._prediction_size

  @property
  def embedding_sizes(self) -> tuple[int, ...]:
    return self._embedding_sizes

  @property
  def use_baseline(self) -> bool:
    return self._use_baseline

  @property
  def kind(self) -> str:
    return KIND

  @property
  def y_softmax(self) -> bool:
    return self._y_softmax

  @property
  def td_lambda(self) -> Optional[float]:
    """lambda of a TD(lambda) value target (LPG-V); None: eta learns y_hat."""
    return None

  @property
  def loss_config(self) -> base.LossConfig:
    """Eq. 2; Eq. 7 (f(s) subtracted, 1/2 (f - pi_hat)^2) with the baseline."""
    return self._loss_config

  def __call__(self, inputs: types.RuleInputs,
               portable: bool = False) -> types.RuleOutput:
    """Targets for a trajectory (Section 3.1).

    Args:
      inputs: `reward`, `discount`, `gamma`, `pi_a` `[T, N]` and `y`, `y_next`
        `[T, N, m]`; `baseline` is not read.
      portable: the same targets from plain TensorFlow ops, for graphs that are
        converted to other formats (ONNX) rather than meta-trained: the LSTM
        without its hand-written gradient (`lstm_backward.backward_lstm`).

    Returns:
      `pi_hat` `[T, N]`, `y_hat` `[T, N, m]` on the simplex, its logits
      `y_hat_logits` (the KL of Eq. 2 reads them), and, with `use_baseline`,
      `baseline_target` = `pi_hat` (Eq. 7), else None. With `y_softmax` False,
      `y_hat` is the head's raw output and `y_hat_logits` None.
    """
    return self._targets(self._read_out(inputs, portable), inputs, portable)

  def member_targets(self, params: Sequence[tf.Tensor],
                     inputs: types.RuleInputs,
                     num_members: int) -> types.RuleOutput:
    """The targets of M copies of eta with their own parameters, forward only.

    Evolution strategies (lpg_tf.meta.es) score M perturbed copies eta_i in one
    batched call: the N columns of `inputs` are M contiguous blocks of n,
    block i read by eta_i. Each block's targets equal `self(inputs)` on that
    block with the variables set to eta_i (without the hand-written gradient:
    the rule is not differentiated, `lstm_backward.backward_lstm_members`).

    Args:
      params: one `[M, ...]` tensor per variable of `trainable_variables`, in
        that order.
      inputs: as for `__call__`, `[T, N, ...]` with N = M x n and a static T.
      num_members: M.

    Returns:
      As `__call__`, `[T, N, ...]`.
    """
    self._check_shapes(inputs)
    self._create_heads()
    variables = self.trainable_variables
    if len(params) != len(variables):
      raise ValueError(f"member_targets: {len(params)} parameter tensors for "
                       f"{len(variables)} variables")
    lookup = {v.ref(): p for v, p in zip(variables, params)}

    def by_member(x: tf.Tensor) -> tf.Tensor:  # [T, N, ...] -> [T, M, n, ...]
      return tf.reshape(x, [x.shape[0], num_members, -1] + x.shape[2:].as_list())

    def embed(y: tf.Tensor) -> tf.Tensor:  # phi, per member
      layers = self._embedding.module.submodules
      for index, layer in enumerate(layers):
        y = (tf.einsum("tmni,mio->tmno", y, lookup[layer.w.ref()])
             + lookup[layer.b.ref()][None, :, None])
        if index + 1 < len(layers):
          y = tf.nn.relu(y)
      return y

    scalars = tf.stack(
        [inputs.reward, inputs.discount, inputs.gamma, inputs.pi_a], axis=-1)
    x = tf.concat([by_member(scalars), embed(by_member(inputs.y)),
                   embed(by_member(inputs.y_next))], axis=-1)
    heads = self._heads()
    core = self._core
    outputs = lstm_backward.backward_lstm_members(
        x, by_member(inputs.discount), lookup[core.w_i.ref()],
        lookup[core.w_h.ref()], lookup[core.b.ref()],
        tf.concat([lookup[head.w.ref()] for head in heads], axis=2),
        tf.concat([lookup[head.b.ref()] for head in heads], axis=1))
    return self._targets(
        tf.reshape(outputs, inputs.reward.shape.as_list() + [-1]), inputs,
        portable=False)

  def _targets(self, outputs: tf.Tensor, inputs: types.RuleInputs,
               portable: bool) -> types.RuleOutput:
    """The targets from the heads' read-outs `[T, N, 1 + m]` (`_read_out`)."""
    del inputs, portable  # LPG-V's targets read them.
    # A split, not two slices: its gradient is one concat (lpg_tf.slicing).
    pi_hat, y_hat = tf.split(outputs, [1, outputs.shape[-1] - 1], axis=-1)
    pi_hat = tf.squeeze(pi_hat, axis=-1)
    baseline_target = pi_hat if self._use_baseline else None
    if not self._y_softmax:
      return types.RuleOutput(pi_hat=pi_hat, y_hat=y_hat,
                              baseline_target=baseline_target)
    return types.RuleOutput(
        pi_hat=pi_hat, y_hat=tf.nn.softmax(y_hat),
        baseline_target=baseline_target, y_hat_logits=y_hat)

  def _read_out(self, inputs: types.RuleInputs, portable: bool) -> tf.Tensor:
    """The heads' read-outs of the backward LSTM, `[T, N, sum of head sizes]`
    in `_heads` order; `portable` as in `__call__`."""
    self._check_shapes(inputs)
    scalars = tf.stack(
        [inputs.reward, inputs.discount, inputs.gamma, inputs.pi_a], axis=-1)
    x = tf.concat(
        [scalars, self._embedding(inputs.y), self._embedding(inputs.y_next)],
        axis=-1)  # [T, N, 4 + 2 * embedding_sizes[-1]]
    # The backward LSTM with resets (Appendix B.1): h_t sees steps t.. of its own
    # episode only. The heads are read out inside the LSTM op (lstm_backward),
    # whose gradient recomputes h instead of keeping it.
    self._create_heads()
    heads = self._heads()
    w_out = tf.concat([head.w for head in heads], axis=1)
    b_out = tf.concat([head.b for head in heads], axis=0)
    return self._core(x, inputs.discount, w_out, b_out, portable=portable)

  @snt.once
  def _create_heads(self) -> None:
    """Creates the heads' variables (snt.Linear makes them on a first call)."""
    hidden = tf.zeros([1, self._hidden_size], self._dtype)
    for head in self._heads():
      head(hidden)

  def build(self) -> None:
    """Creates the rule's variables (Sonnet creates them on the first call) by
    calling the rule on a one-step trajectory; a no-op once they exist."""
    scalar = tf.zeros([1, 1], self._dtype)
    vector = tf.fill([1, 1, self._prediction_size],
                     tf.constant(1.0 / self._prediction_size, self._dtype))
    self(types.RuleInputs(reward=scalar, discount=scalar + 1.0, gamma=scalar,
                          pi_a=scalar, y=vector, y_next=vector, baseline=None))

  def _check_shapes(self, inputs: types.RuleInputs) -> None:
    """Static rank, [T, N] and m checks, so a wrong axis fails before any
    compute (an input laid out [L, T, B] would otherwise run as a wrong T)."""
    shapes.assert_shapes("LPG", [
        (field, getattr(inputs, field), ["T", "N"])
        for field in ("reward", "discount", "gamma", "pi_a")
    ] + [(field, getattr(inputs, field), ["T", "N", None])
         for field in ("y", "y_next")])
    for field in ("y", "y_next"):
      shape = getattr(inputs, field).shape
      if shape.rank != 3 or shape[-1] != self._prediction_size:
        raise errors.ConfigError(
            f"LPG input {field} must be [T, N, m] with m = "
            f"{self._prediction_size} (the rule's prediction_size), got "
            f"{shape}.")

