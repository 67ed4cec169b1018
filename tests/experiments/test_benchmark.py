"""The throughput benchmark: its figures and the 10^10-step projection."""

import math

import pytest

from lpg_tf.experiments import benchmark
from tests.meta import test_trainer


def test_hours_for_budget_is_the_papers_two_hours_at_target_rate():
  """10^10 steps at 10^10 / 7200 steps/s take 2 hours (the issue's target)."""
  assert benchmark.hours_for_budget(1e10 / 7200) == pytest.approx(2.0)
  assert benchmark.hours_for_budget(1000.0, total_env_steps=7.2e6) == (
      pytest.approx(2.0))


@pytest.mark.parametrize("rate", [0.0, -1.0, float("nan")])
def test_hours_for_budget_refuses_a_rate_that_is_not_positive(rate):
  with pytest.raises(ValueError, match="env_steps_per_s"):
    benchmark.hours_for_budget(rate)


@pytest.mark.slow  # About a minute on 2 busy cores (tracing included).
def test_measure_reports_memory_and_projection_on_cpu():
  """On a CPU the peak memory is the process's; the projection counts the
  inner and the scoring rollouts' steps."""
  config = test_trainer.tiny_config(**test_trainer.ONE_GROUP)
  figures = benchmark.measure(config, jit_compile=False, warmup_steps=0,
                              timed_steps=1)
  assert math.isnan(figures["device_peak_mb"])
  assert figures["peak_memory_mb"] == figures["peak_rss_mb"] > 0
  all_steps_per_s = (figures["env_steps_per_s"]
                     + figures["scoring_env_steps_per_s"])
  assert figures["hours_for_1e10_env_steps"] == pytest.approx(
      1e10 / all_steps_per_s / 3600)
  assert figures["compile_s"] > 0
  assert math.isnan(figures["meta_step_gflop"])  # Counted from XLA's HLO.


def test_a_scaling_sweep_varies_one_thing_at_a_time():
  assert benchmark.scaling_settings([8, 16, 32], [1, 5, 10], 8, 5) == [
      (8, 5), (16, 5), (32, 5), (8, 1), (8, 10)]
  assert benchmark.scaling_settings([], [1, 5], 4, 5) == [(4, 1), (4, 5)]


def test_linear_fit_recovers_a_line_and_needs_two_points():
  slope, intercept = benchmark.linear_fit([8, 16, 32], [1000 + 65 * n
                                                        for n in (8, 16, 32)])
  assert (slope, intercept) == (pytest.approx(65.0), pytest.approx(1000.0))
  with pytest.raises(ValueError, match="two distinct"):
    benchmark.linear_fit([8, 8], [1.0, 2.0])


def test_a_dense_matmul_rate_is_its_flops_over_its_time():
  rate = benchmark.dense_matmul_flops_per_s(size=128, repetitions=3)
  assert 1e6 < rate < 1e14


@pytest.mark.slow  # Compiles a tiny meta-step with XLA: about two minutes.
@pytest.mark.parametrize("jit_compile", [True, False])
def test_measure_counts_the_meta_steps_matmul_flops(jit_compile):
  """With XLA or without, the figures hold the meta-step's matmul FLOPs (the
  same count: the same step lowered for XLA) and the achieved share of a
  dense matmul's rate."""
  config = test_trainer.tiny_config(**test_trainer.ONE_GROUP)
  figures = benchmark.measure(config, jit_compile=jit_compile, warmup_steps=0,
                              timed_steps=1)
  assert figures["meta_step_gflop"] > 0
  assert figures["achieved_gflop_per_s"] == pytest.approx(
      figures["meta_step_gflop"] * figures["meta_steps_per_s"])
  assert figures["share_of_dense_matmul"] == pytest.approx(
      figures["achieved_gflop_per_s"] / figures["dense_matmul_gflop_per_s"])
