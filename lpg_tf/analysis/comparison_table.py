"""The table of a comparison of update rules, from its results (results.json).

`experiments/compare.py` trains every rule on every environment with its
tuned alpha and records, per environment, each rule's test final returns and
the uniformly random policy's return. This module turns that record into
numbers and markdown: `verdicts` (does a rule reach A2C's mean final return,
does it beat the random policy), `target_counts` (the counts issue 12's target
is stated in: a rule >= A2C on the tabular and chain environments, > random on
the MinAtar games), `pairwise` (every rule against every other) and `markdown`
(results.md). Comparisons are of means over the test seeds; the table shows
their standard errors next to them.

The record, as `compare.py` writes it:
  {"settings": {"rules": [...], "seeds": N, ...},
   "envs": {env: {"steps": int, "action_space": str | None,
                  "random_return": float | None,
                  "rules": {rule: {"chosen": [alpha_lr, alpha_y],
                                   "mean": float | None, "stderr": ..., ...}}}}}
"""

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

A2C = "a2c"
# The families issue 12's target counts over.
TABULAR_AND_CHAIN = ("tabular/", "chain/")
MINATAR = ("minatar/",)

Results = Mapping[str, Any]


def _in(env_name: str, families: Sequence[str]) -> bool:
  return env_name.startswith(tuple(families))


def _mean(env: Mapping[str, Any], rule: str) -> Optional[float]:
  return env["rules"][rule]["mean"]


def verdicts(results: Results, rule: str, env_name: str
            ) -> Tuple[Optional[bool], Optional[bool]]:
  """(rule >= A2C, rule > random) on one environment by mean final return;
  None where a side has no number (no A2C in the comparison, no episode
  ended)."""
  env = results["envs"][env_name]
  mean = _mean(env, rule)
  a2c = _mean(env, A2C) if A2C in env["rules"] else None
  random = env["random_return"]
  at_least_a2c = None if mean is None or a2c is None else mean >= a2c
  beats_random = None if mean is None or random is None else mean > random
  return at_least_a2c, beats_random


def _count(results: Results, rule: str, families: Sequence[str],
           which: int) -> List[int]:
  """[how many yes, out of how many environments of `families` done]."""
  names = [n for n in results["envs"] if _in(n, families)]
  return [sum(verdicts(results, rule, n)[which] is True for n in names),
          len(names)]


def learned_rules(results: Results) -> List[str]:
  """The rules compared against A2C and the random policy: all but A2C."""
  return [r for r in results["settings"]["rules"] if r != A2C]


def target_counts(results: Results) -> Dict[str, Dict[str, List[int]]]:
  """Per rule: [k, n] environments where it reaches A2C (tabular and chain
  environments) and where it beats the random policy (MinAtar games)."""
  return {rule: {"at_least_a2c_tabular_chain":
                     _count(results, rule, TABULAR_AND_CHAIN, 0),
                 "beats_random_minatar": _count(results, rule, MINATAR, 1)}
          for rule in results["settings"]["rules"]}


def pairwise(results: Results) -> Dict[str, Dict[str, List[int]]]:
  """rule -> other rule -> [environments where rule's mean >= other's, out of
  the environments where both have one]."""
  rules = results["settings"]["rules"]
  table = {}
  for rule in rules:
    table[rule] = {}
    for other in rules:
      if other == rule:
        continue
      pairs = [(_mean(e, rule), _mean(e, other))
               for e in results["envs"].values()]
      pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
      table[rule][other] = [sum(a >= b for a, b in pairs), len(pairs)]
  return table


def _alpha(chosen: Sequence[float], rule: str) -> str:
  learning_rate, kl_cost = chosen
  if rule == A2C:
    return f"α_lr {learning_rate:g}"
  return f"α_lr {learning_rate:g}, α_y {kl_cost:g}"


def _number(value: Optional[float], stderr: Optional[float] = None) -> str:
  if value is None:
    return "–"
  return f"{value:.3g}" if stderr is None else f"{value:.3g} ± {stderr:.2g}"


def _yes_no(value: Optional[bool]) -> str:
  return "–" if value is None else ("yes" if value else "no")


def markdown(results: Results) -> str:
  """results.md: the settings, one row per environment, the target's counts
  and every rule against every other."""
  settings = results["settings"]
  rules = settings["rules"]
  learned = learned_rules(results)
  has_a2c = A2C in rules
  header = ["environment", "steps", "random"] + [f"{r} (α)" for r in rules]
  for rule in learned:
    header += ([f"{rule} ≥ A2C?"] if has_a2c else []) + [f"{rule} > random?"]
  lines = [
      "# Comparison of update rules",
      "",
      f"Final return (mean ± standard error over {settings['seeds']} test "
      f"seeds) of each rule with its α chosen on {settings['tuning_seeds']} "
      "tuning seeds; the uniformly random policy on the test instances. "
      "Grid worlds use the MOVE action space (9 actions). Comparisons are of "
      "means.",
      "",
      "| " + " | ".join(header) + " |",
      "| " + " | ".join("---" for _ in header) + " |",
  ]
  for env_name, env in results["envs"].items():
    row = [env_name, f"{env['steps']:,}", _number(env["random_return"])]
    for rule in rules:
      record = env["rules"][rule]
      row.append(f"{_number(record['mean'], record['stderr'])} "
                 f"({_alpha(record['chosen'], rule)})")
    for rule in learned:
      at_least_a2c, beats_random = verdicts(results, rule, env_name)
      row += ([_yes_no(at_least_a2c)] if has_a2c else []) + [
          _yes_no(beats_random)]
    lines.append("| " + " | ".join(row) + " |")
  lines += ["", "## Target counts", ""]
  counts = target_counts(results)
  for rule in rules:
    a2c_k, a2c_n = counts[rule]["at_least_a2c_tabular_chain"]
    random_k, random_n = counts[rule]["beats_random_minatar"]
    if rule != A2C and has_a2c:
      lines.append(f"- {rule} ≥ A2C on {a2c_k} of the {a2c_n} tabular+chain "
                   "environments compared (Appendix A has 10)")
    lines.append(f"- {rule} > random on {random_k} of {random_n} MinAtar "
                 "games compared (of 5)")
  if len(rules) > 1:
    lines += ["", "## Every rule against every other", "",
              "Environments where the row's mean final return is at least the "
              "column's, of those where both have one.", "",
              "| | " + " | ".join(rules) + " |",
              "| " + " | ".join("---" for _ in range(len(rules) + 1)) + " |"]
    table = pairwise(results)
    for rule in rules:
      cells = ["–" if other == rule else "{} of {}".format(*table[rule][other])
               for other in rules]
      lines.append(f"| {rule} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"
