"""Meta-training: the population of lifetimes (population.py, the one owner of
a lifetime) and its Table 3 settings, the meta-objective (Eq. 4), the meta-step
window, the hyperparameter bandit (Eq. 6) and the meta-gradient trainer."""
