"""Atari actors: parameters in, trajectories out (Acme's actor role).

An actor owns E_actor environments of one game (`lpg_tf.envs.atari`), acts with
the agent parameters it last read from the VARIABLES table (an L = 1
`AgentNetwork`, actions sampled from pi(.|s)), cuts the step stream into
`[T, E_actor]` unrolls (`trajectory_buffer`, which also removes the
environments' auto-reset steps) and writes one TRAJECTORIES item per unroll.
Before each unroll it reads the latest parameters. The learner applies no
off-policy correction (nor does the paper's agent update), so the pipeline keeps
the data in flight small: one batch in the queue, about one more in the
learner's dataset; an unroll reaches the learner acted by parameters 3-4 updates
old (measured on Breakout with 2 actors).

Rewards are clipped to [-1, 1] for learning, as for DQN and IMPALA on Atari (the
toy environments LPG was meta-trained on have rewards of that size); episode
returns stay raw game scores.

Everything an actor needs besides the game comes from the server: T and E_actor
from the TRAJECTORIES signature, the number of actions and m from the VARIABLES
one. So the same code runs

  * locally, as processes of an `ActorPool` (multiprocessing "spawn"), which
    notices a dead actor, logs it and starts a new one (with new environment
    seeds) in its place;
  * on another machine, pointed at the learner's server:
      python -m lpg_tf.distributed.actors --server_address=HOST:PORT \\
          --game=atari/Breakout --seed=17
    (the learner logs its address; a remote actor's items join the queue
    alongside the local actors').
"""

import multiprocessing
import os
import signal
import threading
import time
from typing import Callable, List, NamedTuple, Optional, Sequence

from absl import app
from absl import flags
from absl import logging
import numpy as np
import reverb
import tensorflow as tf

from lpg_tf import agents
from lpg_tf import errors
from lpg_tf.distributed import reverb_tables
from lpg_tf.distributed import trajectory_buffer
from lpg_tf.envs import atari

REWARD_CLIP = 1.0  # |r| <= 1 for learning (Mnih et al. 2015).
DEFAULT_MAX_RESTARTS = 10  # per actor, before the pool reports a failure.
RESTART_SEED_STRIDE = 1_000_003  # a restarted actor's environments get new seeds.
SERVER_INFO_TIMEOUT_S = 60
LOG_EVERY_S = 60.0


class ActorConfig(NamedTuple):
  """What an actor process needs (picklable, for the "spawn" context).

  Attributes:
    server_address: the Reverb server, "host:port".
    game: `atari/<Game>`; must have as many actions as the learner's agent.
    actor_id: index of the actor, for logs.
    seed: seeds the environments (seed + i for environment i) and the action
      sampling.
    max_episode_frames: the episode frame limit.
    env_threads: emulator threads (0: ale-py's choice).
    clip_rewards: clip rewards to [-1, 1] for learning.
    jit_compile: compile the policy with XLA (3x faster than without on CPU).
    parent_pid: stop when the process with this pid is no longer the parent
      (the learner died without shutting the actor down); None for remote
      actors.
  """
  server_address: str
  game: str
  actor_id: int = 0
  seed: int = 0
  max_episode_frames: int = atari.MAX_EPISODE_FRAMES
  env_threads: int = 0
  clip_rewards: bool = True
  jit_compile: bool = True
  parent_pid: Optional[int] = None


class AtariActor:
  """Acts in E_actor environments and writes their unrolls to Reverb."""

  def __init__(self, env: atari.AtariEnv, agent: agents.AgentNetwork,
               client: reverb.Client, unroll_length: int, seed: int,
               clip_rewards: bool = True, jit_compile: bool = True):
    """Resets the environments; call `run` to act.

    Args:
      env: the environments (E_actor of them).
      agent: an L = 1 agent network; its variables are overwritten by the
        learner's parameters.
      client: a client of the server holding TRAJECTORIES and VARIABLES.
      unroll_length: T.
      seed: seeds the action sampling.
      clip_rewards: clip rewards to [-1, 1] in the items.
      jit_compile: compile the policy with XLA.
    """
    self._env = env
    self._agent = agent
    self._client = client
    self._rng = np.random.default_rng(seed)
    self._clip_rewards = clip_rewards
    self._policy = tf.function(self._policy_logits, jit_compile=jit_compile)
    self._observation = env.reset()
    self._buffer = trajectory_buffer.TrajectoryBuffer(
        env.num_envs, unroll_length, self._observation)
    self._writer = reverb_tables.UnrollWriter(client, unroll_length)
    self._learner_step = -1
    self._env_steps = 0

  @property
  def learner_step(self) -> int:
    """The learner update whose parameters the actor acts with."""
    return self._learner_step

  def _policy_logits(self, observation: tf.Tensor) -> tf.Tensor:
    """`[E, 84, 84, 4]` uint8 -> `[E, A]` logits of pi."""
    return self._agent(observation[None]).policy_logits[0]

  def update_params(self) -> None:
    """Reads the latest parameters from VARIABLES (blocks until one exists)."""
    learner_step, params = reverb_tables.fetch_variables(self._client)
    if learner_step != self._learner_step:
      self._agent.assign(params)
      self._learner_step = learner_step

  def select_action(self, observation: np.ndarray) -> np.ndarray:
    """a ~ pi(.|s) for `[E, ...]` observations (Gumbel-max sampling), `[E]`."""
    logits = self._policy(observation).numpy()
    noise = self._rng.gumbel(size=logits.shape)
    return np.argmax(logits + noise, axis=-1).astype(np.int32)

  def collect_unroll(self) -> trajectory_buffer.Unroll:
    """Steps the environments until every one has T new transitions."""
    unroll = self._buffer.pop()
    while unroll is None:
      action = self.select_action(self._observation)
      step = self._env.step(action)
      reward = step.reward
      if self._clip_rewards:
        reward = np.clip(reward, -REWARD_CLIP, REWARD_CLIP)
      self._buffer.add(action, reward, step.done, step.episode_return,
                       step.observation, step.reset_step)
      self._observation = step.observation
      self._env_steps += int(np.sum(~step.reset_step))
      unroll = self._buffer.pop()
    return unroll

  def run(self, keep_running: Callable[[], bool], name: str = "actor") -> None:
    """Acts and writes unrolls until `keep_running()` is False."""
    last_log, last_steps = time.time(), 0
    while keep_running():
      self.update_params()
      if not self._writer.write(self.collect_unroll(), keep_running):
        break
      if time.time() - last_log > LOG_EVERY_S:
        rate = (self._env_steps - last_steps) / (time.time() - last_log)
        logging.info("%s: %d env steps (%.0f/s), acting with learner step %d, "
                     "environments at most %d steps apart", name,
                     self._env_steps, rate, self._learner_step,
                     self._buffer.lag)
        last_log, last_steps = time.time(), self._env_steps

  def close(self) -> None:
    self._writer.close()
    self._env.close()


def run_actor(config: ActorConfig) -> None:
  """An actor's whole life: connect, build, act until told or left to stop.

  Raises:
    ConfigError: the game does not fit the learner's agent.
  """
  name = f"actor {config.actor_id} (pid {os.getpid()})"
  client = reverb.Client(config.server_address)
  info = client.server_info(SERVER_INFO_TIMEOUT_S)
  shape = reverb_tables.unroll_shape_from_signature(
      info[reverb_tables.TRAJECTORIES].signature)
  param_specs = info[reverb_tables.VARIABLES].signature[reverb_tables.PARAMS]
  env = atari.AtariEnv(config.game, shape.num_envs, seed=config.seed,
                       num_threads=config.env_threads,
                       max_episode_frames=config.max_episode_frames)
  learner_actions = param_specs["policy/w"].shape[-1]
  if env.spec.num_actions != learner_actions:
    env.close()
    raise errors.ConfigError(
        f"{config.game} has {env.spec.num_actions} actions, the learner's "
        f"agent at {config.server_address} has {learner_actions}: wrong game?")
  agent = agents.build_agent(
      env.spec, num_lifetimes=1, seed=0,
      prediction_size=param_specs["prediction/w"].shape[-1],
      torso=agents.ATARI.torso)
  actor = AtariActor(env, agent, client, shape.unroll_length, config.seed,
                     config.clip_rewards, config.jit_compile)
  logging.info("%s: %s, %d environments, T=%d, writing to %s", name,
               env.spec.name, shape.num_envs, shape.unroll_length,
               config.server_address)

  def keep_running() -> bool:
    return config.parent_pid is None or os.getppid() == config.parent_pid

  try:
    actor.run(keep_running, name)
  finally:
    actor.close()
  logging.info("%s: the learner process is gone; stopping", name)


def _process_main(config: ActorConfig) -> None:
  """Entry point of a spawned actor process.

  Ctrl-C reaches the whole process group; actors ignore it and leave the
  shutdown to the learner process, which terminates them.
  """
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  logging.use_absl_handler()
  logging.set_verbosity(logging.INFO)
  run_actor(config)


class ActorPool:
  """Local actor processes, watched: a dead one is logged and replaced.

  A daemon thread checks every `poll_interval_s` whether each process is alive.
  An actor that died is started again with new environment seeds, at most
  `max_restarts` times; after that the pool gives up on it and reports it in
  `failure`, which the training loop turns into an error. `stop` terminates
  every process (SIGTERM, then SIGKILL after a grace period) and is safe to
  call more than once.
  """

  def __init__(self, configs: Sequence[ActorConfig],
               max_restarts: int = DEFAULT_MAX_RESTARTS,
               poll_interval_s: float = 1.0, stop_grace_s: float = 5.0):
    self._configs = list(configs)
    self._max_restarts = max_restarts
    self._poll_interval_s = poll_interval_s
    self._stop_grace_s = stop_grace_s
    self._context = multiprocessing.get_context("spawn")
    self._processes: List[Optional[multiprocessing.Process]] = (
        [None] * len(self._configs))
    self._restarts = [0] * len(self._configs)
    self._given_up = [False] * len(self._configs)
    self._failure: Optional[str] = None
    self._lock = threading.Lock()
    self._stopping = threading.Event()
    self._monitor: Optional[threading.Thread] = None

  def _spawn(self, index: int) -> None:
    config = self._configs[index]
    config = config._replace(
        seed=config.seed + RESTART_SEED_STRIDE * self._restarts[index])
    process = self._context.Process(
        target=_process_main, args=(config,), name=f"atari-actor-{index}",
        daemon=True)
    process.start()
    self._processes[index] = process

  def start(self) -> None:
    """Starts every actor and the watching thread."""
    with self._lock:
      for index in range(len(self._configs)):
        self._spawn(index)
    self._monitor = threading.Thread(target=self._watch, name="actor-monitor",
                                     daemon=True)
    self._monitor.start()

  def _watch(self) -> None:
    while not self._stopping.wait(self._poll_interval_s):
      self.check()

  def check(self) -> int:
    """Replaces dead actors now; returns how many were restarted."""
    restarted = 0
    with self._lock:
      if self._stopping.is_set():
        return 0
      for index, process in enumerate(self._processes):
        if process is None or process.is_alive() or self._given_up[index]:
          continue
        if self._restarts[index] >= self._max_restarts:
          self._given_up[index] = True
          self._failure = (
              f"actor {index} died {self._restarts[index] + 1} times (last "
              f"exit code {process.exitcode}); see its log above")
          logging.error("Giving up on %s", self._failure)
          continue
        self._restarts[index] += 1
        logging.warning("Actor %d (pid %d) died with exit code %s; starting a "
                        "new one (restart %d of at most %d)", index,
                        process.pid, process.exitcode, self._restarts[index],
                        self._max_restarts)
        self._spawn(index)
        restarted += 1
    return restarted

  @property
  def failure(self) -> Optional[str]:
    """Why the pool gave up on an actor, or None."""
    return self._failure

  @property
  def restarts(self) -> List[int]:
    """How many times each actor was restarted."""
    return list(self._restarts)

  @property
  def pids(self) -> List[Optional[int]]:
    """The current process id of each actor."""
    return [None if p is None else p.pid for p in self._processes]

  def status(self) -> str:
    """One line per actor: pid, alive or exit code, restarts."""
    lines = []
    for index, process in enumerate(self._processes):
      if process is None:
        state = "not started"
      elif process.is_alive():
        state = f"pid {process.pid} alive"
      else:
        state = f"pid {process.pid} dead (exit code {process.exitcode})"
      lines.append(f"actor {index}: {state}, {self._restarts[index]} restarts")
    return "; ".join(lines) if lines else "no local actors"

  def stop(self) -> None:
    """Terminates every actor process and the watching thread."""
    self._stopping.set()
    if self._monitor is not None and self._monitor is not threading.current_thread():
      self._monitor.join()
    with self._lock:
      processes = [p for p in self._processes if p is not None]
      for process in processes:
        if process.is_alive():
          process.terminate()
      for process in processes:
        process.join(self._stop_grace_s)
        if process.is_alive():
          logging.warning("Actor pid %d ignored SIGTERM; killing it",
                          process.pid)
          process.kill()
          process.join()


def _remote_main(argv: Sequence[str]) -> None:
  """`python -m lpg_tf.distributed.actors`: one actor for a remote server."""
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  run_actor(ActorConfig(
      server_address=flags.FLAGS.server_address, game=flags.FLAGS.game,
      actor_id=flags.FLAGS.actor_id, seed=flags.FLAGS.seed,
      max_episode_frames=flags.FLAGS.max_episode_frames,
      env_threads=flags.FLAGS.env_threads))


def _define_remote_flags() -> None:
  flags.DEFINE_string("server_address", None, "The learner's Reverb server, "
                      "host:port (logged by the learner at start).")
  flags.DEFINE_string("game", None, "atari/<Game>, the learner's game.")
  flags.DEFINE_integer("actor_id", 100, "Index of this actor, for logs.")
  flags.DEFINE_integer("seed", 100, "Seed of the environments and actions; "
                       "give each actor its own.")
  flags.DEFINE_integer("max_episode_frames", atari.MAX_EPISODE_FRAMES,
                       "Episode frame limit; the learner's.")
  flags.DEFINE_integer("env_threads", 0, "Emulator threads (0: one per core).")
  flags.mark_flags_as_required(["server_address", "game"])


if __name__ == "__main__":
  _define_remote_flags()
  app.run(_remote_main)
