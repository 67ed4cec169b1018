"""The embedded default: a small LPG meta-training run that learns within minutes
on a 2-core CPU.

A few tabular grid worlds and delayed chains (Appendix A), a small LSTM and
population, and lifetimes of a few hundred thousand steps. Every value can be
overridden on the command line, e.g. `--config.num_meta_steps=500`.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.name = "cpu"
  config.seed = 0
  config.strategy = "auto"  # auto | default | gpu | tpu | multi_worker (TF_CONFIG)
  # > 1: split the CPU into this many logical devices and replicate over them
  # (snt.distribute.Replicator; needs strategy auto). 1: one device, as always.
  config.cpu_devices = 1
  config.jit_compile = True

  config.population = ml_collections.ConfigDict()
  config.population.envs = ("tabular/dense", "tabular/sparse", "chain/short",
                            "chain/long")
  config.population.lifetimes_per_env = 2
  config.population.num_envs = 16  # Table 2: 64.
  config.population.unroll_length = 20  # Table 2.
  config.population.num_inner_updates = 5  # Table 2: K.
  config.population.prediction_size = 30  # Section 4.1: m.
  config.population.lifetime_scale = 0.1  # x Table 3's lifetimes.
  # Equal parts of the population, each with its own random streams, that the
  # replicas share out (lpg_tf/meta/population.py): a multiple of the number
  # of replicas, dividing lifetimes_per_env. eta depends on it, not on how
  # many replicas run the shards.
  config.population.shards = 1
  # 0: the meta-step is one compiled program over every group. n > 0: each
  # shard's groups run as programs of at most n groups, their meta-gradients
  # added up outside (lpg_tf/meta/trainer.py): the same meta-gradient up to
  # float rounding, compiled in far less time and memory for a large
  # population (configs/appendix_a.py). Not for meta.optimiser "es"; "hybrid"
  # applies it to its meta-gradient steps only.
  config.population.groups_per_program = 0
  # With groups_per_program > 0: run the programs concurrently, one thread
  # per core (faster on a multi-core CPU: XLA threads only matmuls, and one
  # program compiles while the next is traced), or one after another (False:
  # less memory).
  config.population.concurrent_programs = True
  # Grid worlds: one group per environment whose lifetimes each draw their
  # action space (Appendix A.1), instead of a group per action space
  # (lpg_tf.meta.population).
  config.population.sampled_action_spaces = False

  config.rule = ml_collections.ConfigDict()
  # "lpg", or "lpg_v" (Section 4.1's LPG-V: the agents predict a value v trained
  # by TD(rule.td_lambda) and eta learns pi_hat only; population.prediction_size,
  # rule.y_softmax and Eq. 4's beta1, beta3 do not apply).
  config.rule.kind = "lpg"
  config.rule.hidden_size = 32  # Appendix B.1: 256.
  config.rule.embedding_sizes = (16, 1)  # Appendix B.1.
  config.rule.use_baseline = False
  # Initial stddev of the y_hat head's weights; None: Sonnet's 1/sqrt(hidden_size).
  config.rule.y_head_init_stddev = ml_collections.FieldReference(
      None, field_type=float)
  # False: y in R^m without softmax, alpha_y ||y - y_hat||^2 in place of the KL
  # of Eq. 2 (Figure 7's "LPG w/o Softmax(y)"); needs meta.prediction_entropy_cost=0.
  config.rule.y_softmax = True
  config.rule.td_lambda = 0.95  # LPG-V's TD(lambda) of the value; not in the paper.

  config.meta = ml_collections.ConfigDict()
  config.meta.learning_rate = 1e-3  # Table 2: 1e-4, for 960 lifetimes.
  config.meta.prediction_entropy_cost = 0.001  # Table 2: beta1.
  config.meta.pi_hat_l2_cost = 0.001  # Table 2: beta2.
  config.meta.y_hat_l2_cost = 0.001  # Table 2: beta3.
  config.meta.advantage_lambda = 0.95
  config.meta.bandit_temperature = 0.1  # Table 2: tau.
  config.meta.bandit_exploration_bonus = 0.2  # Table 2: rho.
  config.meta.bandit_window = 10  # Appendix B.1.
  config.meta.entropy_reset_threshold = 1e-3
  config.meta.critic_learning_rate = 0.01  # Adam, for the outer A2C's critics.
  config.meta.max_grad_norm = 0.0  # Global-norm clipping of the meta-gradient; 0 = off.
  # Recompute each inner update in the meta-gradient's backward pass instead of
  # keeping its intermediates: the same meta-gradient, memory that does not
  # grow with an update's activations, one more forward pass of each update.
  config.meta.rematerialise_inner_updates = False
  # The bandit p(alpha|E) of Section 3.4; False: every lifetime gets its
  # environment's fixed alpha, the middle of Table 3's grid (Figure 7's
  # "LPG fixed hyper").
  config.meta.bandit = True
  # How eta is meta-trained: "gradient" (the meta-gradient of Eq. 4 through K
  # inner updates) or "es" (evolution strategies, lpg_tf/meta/es_trainer.py:
  # antithetic perturbations of eta scored by their agents' returns, the
  # estimate fed to the same Adam at meta.learning_rate) or "hybrid" (both
  # alternating on one eta and one Adam, lpg_tf/meta/hybrid_trainer.py).
  config.meta.optimiser = "gradient"
  config.meta.es = ml_collections.ConfigDict()
  config.meta.es.population_size = 8  # P perturbed members (pairs), eta besides.
  config.meta.es.sigma = 0.01  # perturbation stddev.
  config.meta.es.window = 10  # inner updates (x T x B steps) per evaluation.
  config.meta.hybrid = ml_collections.ConfigDict()
  # With meta.optimiser "hybrid": every es_every-th meta-step is an ES step
  # (meta.es settings), the others meta-gradient steps; 1 = ES alone.
  config.meta.hybrid.es_every = 5

  config.num_meta_steps = 1500  # ~8.5 minutes on 2 cores, all included.
  # A budget of environment steps instead of num_meta_steps (paper.py).
  config.total_env_steps = ml_collections.FieldReference(None, field_type=float)
  config.checkpoint_every = 250
  config.log_every = 10
  # Consecutive non-finite meta-gradients (each skipped) before the run stops.
  config.max_nonfinite_steps = 100

  # Validation of eta on held-out instances (lpg_tf/meta/validation.py); the
  # best-scoring eta is exported to DIR/best_rule.
  config.validation = ml_collections.ConfigDict()
  # Measured: 14% of a 1500-meta-step run's wall time (about 50 s for the first
  # validation, compilation and references included, then 3-4.5 s each).
  config.validation.every = 250  # meta-steps between validations; 0 = off.
  config.validation.env_steps = 32_000  # per validation lifetime.
  config.validation.lifetimes = 4  # per training environment.
  return config
