"""The agent loss without softmax y (Section 4.4) and with LPG-V's TD(lambda)
value (Section 4.1), against numpy."""

from absl.testing import absltest
import numpy as np
import tensorflow as tf

from lpg_tf import types
from lpg_tf.agents import networks
from lpg_tf.agents import torsos
from lpg_tf.learning import agent_update
from lpg_tf.learning import optimizers
from lpg_tf.learning import update_step
from lpg_tf.rules import base as rule_base
from lpg_tf.rules import lpg_v
from tests.meta import test_meta_gradient

L, T, B, S, A = (test_meta_gradient.L, test_meta_gradient.T,
                 test_meta_gradient.B, test_meta_gradient.S,
                 test_meta_gradient.A)
M, LAMBDA = 5, 0.7


def log_softmax(x):
  x = x - x.max(-1, keepdims=True)
  return x - np.log(np.exp(x).sum(-1, keepdims=True))


class SquaredErrorTest(absltest.TestCase):

  def test_raw_y_is_regressed_on_y_hat_by_squared_error(self):
    rng = np.random.default_rng(0)
    logits, y, y_hat = (rng.normal(size=(L, T, B, n)) for n in (A, M, M))
    action = rng.integers(0, A, size=(L, T, B))
    pi_hat = rng.normal(size=(L, T, B))
    kl_cost = np.array([0.5, 2.0])
    got = agent_update.agent_loss(
        types.AgentOutput(tf.constant(logits), tf.constant(y),
                          tf.zeros([L, T, B], tf.float64)),
        tf.constant(action), types.RuleOutput(tf.constant(pi_hat),
                                              tf.constant(y_hat), None),
        tf.constant(kl_cost), rule_base.LossConfig(y_softmax=False))
    log_pi = np.take_along_axis(log_softmax(logits), action[..., None], -1)
    want = (-log_pi[..., 0] * pi_hat
            + kl_cost[:, None, None] * ((y - y_hat) ** 2).sum(-1))
    np.testing.assert_allclose(got, want.mean(axis=(1, 2)), rtol=1e-12)


class LPGVUpdateTest(absltest.TestCase):

  def test_loss_is_policy_term_plus_td_lambda_regression(self):
    """An update with LPG-V on a tabular agent whose prediction is v(s)."""
    rng = np.random.default_rng(1)
    agent = networks.AgentNetwork(L, (), tf.int32, A, torsos.tabular(),
                                  prediction_size=1, num_states=S, seed=0)
    theta = {k: tf.constant(rng.normal(size=v.shape))
             for k, v in agent.params.items()}
    rule = lpg_v.LPGV(hidden_size=5, embedding_sizes=(3, 1), td_lambda=LAMBDA,
                      dtype=tf.float64)
    trajectory = test_meta_gradient.random_trajectory(rng)
    gamma, kl_cost = np.array([0.99, 0.9]), np.array([0.5, 1.0])
    opt = optimizers.Optimiser(optimizers.SGD)
    _, _, info = update_step.update(
        agent.apply, rule, opt, theta, opt.init(theta), trajectory,
        tf.constant(gamma), tf.constant([0.1, 0.1], tf.float64),
        tf.constant(kl_cost))

    table = theta["table"].numpy()  # [L, S, A + 1 + 1]: pi, v, baseline
    lifetimes = np.arange(L)[:, None, None]
    observation = trajectory.observation.numpy()[:, :-1]
    logits = table[lifetimes, observation, :A]
    v = table[lifetimes, observation, A]
    v_next = table[lifetimes, trajectory.next_observation.numpy(), A]
    reward, discount = trajectory.reward.numpy(), trajectory.discount.numpy()
    action = trajectory.action.numpy()
    returns = np.zeros([L, T, B])
    following = v_next[:, -1]
    for t in reversed(range(T)):
      following = reward[:, t] + gamma[:, None] * discount[:, t] * (
          (1 - LAMBDA) * v_next[:, t] + LAMBDA * following)
      returns[:, t] = following
    np.testing.assert_allclose(info.targets.y_hat[..., 0], returns, rtol=1e-10)

    # The rule read v raw, on the true next state.
    def time_major(x):
      return tf.constant(np.swapaxes(x, 0, 1).reshape(T, L * B, *x.shape[3:]))
    pi = np.exp(np.take_along_axis(log_softmax(logits), action[..., None], -1))
    expected = rule(types.RuleInputs(
        reward=time_major(reward), discount=time_major(discount),
        gamma=time_major(np.broadcast_to(gamma[:, None, None], (L, T, B))),
        pi_a=time_major(pi[..., 0]), y=time_major(v[..., None]),
        y_next=time_major(v_next[..., None]), baseline=None))
    pi_hat = info.targets.pi_hat.numpy()
    np.testing.assert_allclose(
        time_major(pi_hat), expected.pi_hat, rtol=1e-10)

    log_pi = np.take_along_axis(log_softmax(logits), action[..., None], -1)
    want = (-log_pi[..., 0] * pi_hat
            + kl_cost[:, None, None] * (v - returns) ** 2).mean(axis=(1, 2))
    np.testing.assert_allclose(info.loss, want, rtol=1e-10)


if __name__ == "__main__":
  absltest.main()
