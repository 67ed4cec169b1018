"""lpg_tf: Learned Policy Gradient (Oh et al., 2020, "Discovering Reinforcement
Learning Algorithms") in TensorFlow 2."""
