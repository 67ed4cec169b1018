"""What tests/meta/test_sharding.py runs in a fresh process: logical CPU devices
exist only if they are set before TensorFlow initialises its devices, which a
pytest process running other tests has long done.

  PYTHONPATH=. python tests/meta/sharded_process.py helpers OUT.json
  PYTHONPATH=. python tests/meta/sharded_process.py trainer OUT.npz REPLICAS...
  PYTHONPATH=. python tests/meta/sharded_process.py resume OUT.npz DIR
  PYTHONPATH=. python tests/meta/sharded_process.py hybrid OUT.npz REPLICAS...
  PYTHONPATH=. python tests/meta/sharded_process.py chunked OUT.npz
  PYTHONPATH=. python tests/meta/sharded_process.py rematerialised OUT.npz

`helpers` checks `meta.sharding` on two logical devices with hand-made values
and writes what it found as JSON. `trainer` splits the CPU into max(REPLICAS)
logical devices and, for each replica count (1: the default strategy, else
`snt.distribute.Replicator` over that many devices), builds a trainer on the
same 4-shard population, takes `STEPS` meta-steps, then one more in which
every lifetime has reached its end; it writes eta and what the bandit and the
step saw, per replica count. `resume` runs meta_train on two logical devices
in DIR/straight (4 meta-steps, a copy of the directory taken after ckpt-2),
continues copies of that snapshot on two devices and on one, and writes the
three final etas. `hybrid` is `trainer` for the hybrid trainer, alternating
ES and meta-gradient steps (HYBRID_OVERRIDES), without the final step.
`chunked` runs `STEPS` meta-steps of a population of two
shards of two groups as one program on one replica, and as programs of one
group on one replica and on two, and writes the three etas and how many
programs the one-replica run traced. `rematerialised` runs `trainer`'s population
for `STEPS` meta-steps on one replica keeping every intermediate and on two
with `meta.rematerialise_inner_updates`, and writes both etas.
"""

import json
import os
import shutil
import sys

import numpy as np

from lpg_tf.distributed import strategy as strategy_lib

STEPS = 3
SHARDS = 4
OVERRIDES = {"population.envs": ("chain/short",),
             "population.lifetimes_per_env": SHARDS,
             "population.shards": SHARDS}
# `hybrid`: an ES step every second step, 4 members.
HYBRID_OVERRIDES = {"meta.optimiser": "hybrid", "meta.hybrid.es_every": 2,
                    "meta.es.population_size": 4, "meta.es.window": 4}
# meta_train's run for `resume`: two shards of one lifetime.
RESUME_OVERRIDES = {"population.envs": ("chain/short",),
                    "population.shards": 2}
# `chunked`'s population: two shards, each a group of each chain.
CHUNKED_OVERRIDES = {"population.envs": ("chain/short", "chain/long"),
                     "population.shards": 2}


def helpers(out_path: str) -> None:
  """sharding.distribute / weighted_mean / gather on two replicas."""
  devices = strategy_lib.cpu_device_names(2)
  import sonnet as snt  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from lpg_tf.meta import sharding  # pylint: disable=g-import-not-at-top

  strategy = snt.distribute.Replicator(devices)
  # Four shards of one group each: values 0..3, a bool per shard.
  items = [(tf.constant([float(i)]), tf.constant([i % 2 == 1]))
           for i in range(SHARDS)]
  shares = sharding.distribute(strategy, items, SHARDS)
  weights = strategy.experimental_distribute_values_from_function(
      lambda ctx: tf.constant([1.0, 3.0][ctx.replica_id_in_sync_group]))

  @tf.function
  def run(shares, weights):
    local_sum = strategy.run(
        lambda share: tf.add_n([x for x, _ in share]), args=(shares,))
    return (sharding.weighted_mean(strategy, local_sum, weights),
            sharding.gather(strategy, shares))

  mean, gathered = run(shares, weights)
  with open(out_path, "w") as f:
    json.dump({"weighted_mean": mean.numpy().tolist(),
               "gathered": [[x.numpy().tolist(), b.numpy().tolist()]
                            for x, b in gathered]}, f)


def _built(config, replicas: int, devices: list, build):
  """The rule (eta_0 from config.seed) and `build(rule, strategy)`'s trainer
  on the first `replicas` of `devices` (1: the default strategy)."""
  import sonnet as snt  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from lpg_tf.experiments import meta_train  # pylint: disable=g-import-not-at-top

  strategy = (tf.distribute.get_strategy() if replicas == 1
              else snt.distribute.Replicator(devices[:replicas]))
  tf.random.set_seed(config.seed)
  rule = meta_train.build_rule(config)
  with strategy.scope():
    return rule, build(rule, strategy)


def _eta(rule) -> np.ndarray:
  return np.concatenate([v.numpy().ravel() for v in rule.trainable_variables])


def _meta_trainer(config, groups_per_program: int = 0):
  """`_built`'s build for a meta-gradient trainer without XLA."""
  from lpg_tf.experiments import meta_train  # pylint: disable=g-import-not-at-top
  return lambda rule, strategy: meta_train.trainer_lib.MetaTrainer(
      rule, meta_train.population_spec(config), meta_train.meta_spec(config),
      seed=config.seed, strategy=strategy, jit_compile=False,
      groups_per_program=groups_per_program)


def trainer(out_path: str, replica_counts: list) -> None:
  """eta after STEPS meta-steps and a step that ends every lifetime."""
  devices = strategy_lib.cpu_device_names(max(replica_counts))
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tests.meta import test_trainer  # pylint: disable=g-import-not-at-top

  config = test_trainer.tiny_config(**OVERRIDES)
  results = {}
  for replicas in replica_counts:
    rule, meta_trainer = _built(config, replicas, devices,
                                _meta_trainer(config))
    for _ in range(STEPS):
      meta_trainer.step()
    population = meta_trainer.population
    for group in population.groups:
      state = group.read()
      group.write(state._replace(steps=tf.fill(
          state.steps.shape, tf.constant(group.lifetime_steps, tf.int64))))
    counts_before = population.bandits.bandits["chain/short"].counts.sum()
    numbers = meta_trainer.step()
    results[f"eta_{replicas}"] = _eta(rule)
    results[f"ended_{replicas}"] = numbers["ended_lifetimes"]
    results[f"bandit_fed_{replicas}"] = (
        population.bandits.bandits["chain/short"].counts.sum() - counts_before)
    results[f"lifetimes_{replicas}"] = population.num_lifetimes
  np.savez(out_path, **results)


def hybrid(out_path: str, replica_counts: list) -> None:
  """eta after STEPS hybrid steps (ES and meta-gradient) per replica count."""
  devices = strategy_lib.cpu_device_names(max(replica_counts))
  from tests.meta import test_trainer  # pylint: disable=g-import-not-at-top
  from lpg_tf.experiments import meta_train  # pylint: disable=g-import-not-at-top

  config = test_trainer.tiny_config(**OVERRIDES, **HYBRID_OVERRIDES)
  results = {}
  for replicas in replica_counts:
    rule, meta_trainer = _built(
        config, replicas, devices,
        lambda rule, strategy: meta_train.build_trainer(
            config, rule, strategy, jit_compile=False))
    es_steps = sum(meta_trainer.step()["hybrid/es_step"] for _ in range(STEPS))
    results[f"eta_{replicas}"] = _eta(rule)
    results[f"es_steps_{replicas}"] = es_steps
    results[f"lifetimes_{replicas}"] = meta_trainer.population.num_lifetimes
  np.savez(out_path, **results)


def resume(out_path: str, root: str) -> None:
  """Final eta of a 2-replica run, and of its ckpt-2 resumed on 2 and 1."""
  strategy_lib.configure_cpu_devices(2)
  from tests.meta import test_trainer  # pylint: disable=g-import-not-at-top
  from lpg_tf.experiments import meta_train  # pylint: disable=g-import-not-at-top

  def config(replicas: int):
    return test_trainer.tiny_config(**{
        **RESUME_OVERRIDES, "cpu_devices": replicas})

  straight = os.path.join(root, "straight")
  snapshot = os.path.join(root, "at_ckpt_2")
  test_trainer.meta_train_with_snapshot(config(2), straight, snapshot, 2)
  results = {"straight": np.concatenate(
      [x.ravel() for _, x in test_trainer.rule_weights(straight)])}
  for replicas in (2, 1):
    resumed = os.path.join(root, f"resumed_on_{replicas}")
    shutil.copytree(snapshot, resumed)
    meta_train.meta_train(config(replicas), resumed, resume=True)
    results[f"resumed_on_{replicas}"] = np.concatenate(
        [x.ravel() for _, x in test_trainer.rule_weights(resumed)])
  np.savez(out_path, **results)


def chunked(out_path: str) -> None:
  """eta after STEPS meta-steps as one program, and as programs of one group
  on one and on two replicas."""
  devices = strategy_lib.cpu_device_names(2)
  from tests.meta import test_trainer  # pylint: disable=g-import-not-at-top

  config = test_trainer.tiny_config(**CHUNKED_OVERRIDES)
  results = {}
  for name, replicas, groups_per_program in (("one_program", 1, 0),
                                             ("chunked_1", 1, 1),
                                             ("chunked_2", 2, 1)):
    rule, meta_trainer = _built(config, replicas, devices,
                                _meta_trainer(config, groups_per_program))
    for _ in range(STEPS):
      meta_trainer.step()
    results[name] = _eta(rule)
    if name == "chunked_1":
      results["traces_1"] = (
          meta_trainer._compiled_chunk.experimental_get_tracing_count())  # pylint: disable=protected-access
  np.savez(out_path, **results)


def rematerialised(out_path: str) -> None:
  """eta after STEPS meta-steps on one replica keeping every intermediate and
  on two replicas recomputing each inner update (each replica's program is
  traced from its own thread, substituting eta's values as it goes)."""
  devices = strategy_lib.cpu_device_names(2)
  from tests.meta import test_trainer  # pylint: disable=g-import-not-at-top

  results = {}
  for name, replicas, rematerialise in (("kept_1", 1, False),
                                        ("rematerialised_2", 2, True)):
    config = test_trainer.tiny_config(
        **OVERRIDES, **{"meta.rematerialise_inner_updates": rematerialise})
    rule, meta_trainer = _built(config, replicas, devices,
                                _meta_trainer(config))
    for _ in range(STEPS):
      meta_trainer.step()
    results[name] = _eta(rule)
  np.savez(out_path, **results)


if __name__ == "__main__":
  if sys.argv[1] == "helpers":
    helpers(sys.argv[2])
  elif sys.argv[1] == "chunked":
    chunked(sys.argv[2])
  elif sys.argv[1] == "resume":
    resume(sys.argv[2], sys.argv[3])
  elif sys.argv[1] == "rematerialised":
    rematerialised(sys.argv[2])
  elif sys.argv[1] == "hybrid":
    hybrid(sys.argv[2], [int(n) for n in sys.argv[3:]])
  else:
    trainer(sys.argv[2], [int(n) for n in sys.argv[3:]])
