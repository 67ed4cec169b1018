"""Meta-training: the meta-objective (Eq. 4), the meta-gradient step, the
hyperparameter bandit (Eq. 6) and the population of lifetimes."""
