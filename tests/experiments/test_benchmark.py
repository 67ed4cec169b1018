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
