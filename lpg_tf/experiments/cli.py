"""What the launchers share: a quiet TensorFlow start-up and one-line flag errors.

A launcher imports this module before anything that imports TensorFlow,
defines its config flag with `define_config_file`, and runs
`app.run(main, flags_parser=cli.parse_flags)`:

  * TensorFlow's start-up noise (CUDA probing, CPU feature notes), its
    retracing warnings and SavedModel notices are hidden unless the absl
    verbosity flag asks for them (`-v 1` or `--verbosity=1`), or
    TF_CPP_MIN_LOG_LEVEL is set by the user;
  * a bad flag, an unknown `--config.<key>`, or a `--config` file that is
    missing or broken ends the process with one line on stderr (exit status 1),
    not a traceback.
"""

import copy
import logging
import os
import sys
from typing import Any, List, Mapping, Sequence

from absl import flags
from absl import logging as absl_logging
import ml_collections
from ml_collections import config_flags

from lpg_tf import errors


def _verbosity(argv: Sequence[str]) -> int:
  """The absl verbosity asked for on the command line (0 if none)."""
  value = "0"
  for index, arg in enumerate(argv):
    for name in ("--verbosity", "-verbosity", "--v", "-v"):
      if arg == name and index + 1 < len(argv):
        value = argv[index + 1]
      elif arg.startswith(name + "="):
        value = arg.split("=", 1)[1]
  try:
    return int(value)
  except ValueError:
    return 0


# Read by TensorFlow's C++ logging when TensorFlow loads: hence at import time.
if _verbosity(sys.argv) < 1:
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _from_lpg_tf_or_important(record: logging.LogRecord) -> bool:
  """Keeps lpg_tf's own logs and every warning; drops other libraries' INFO
  (TensorFlow logs SavedModel notices through absl)."""
  return (record.levelno >= logging.WARNING
          or os.path.abspath(record.pathname).startswith(_PACKAGE_DIR))


def _one_line(error: BaseException) -> str:
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  return lines[0] if lines else type(error).__name__


def _explain(error: BaseException, argv: Sequence[str]) -> str:
  """A one-line description of a flag-parsing failure."""
  if isinstance(error, flags.Error):
    return f"bad flag: {_one_line(error)}"
  if isinstance(error, (AttributeError, KeyError)):
    key = str(error).strip("\"'")
    culprits = [a.split("=", 1)[0] for a in argv[1:]
                if a.split("=", 1)[0].split(".")[-1] == key]
    where = culprits[0] if culprits else f"--config.{key}"
    return f"unknown config key in {where}: the config has no field {key!r}"
  cause = error
  while cause.__cause__ is not None or cause.__context__ is not None:
    cause = cause.__cause__ or cause.__context__
  config_files = [a.split("=", 1)[1] for a in argv[1:]
                  if a.startswith("--config=")]
  name = config_files[-1] if config_files else "the --config file"
  return f"cannot load {name}: {type(cause).__name__}: {_one_line(cause)}"


def _exit(error: BaseException, argv: Sequence[str]) -> None:
  sys.exit(f"{os.path.basename(argv[0])}: {_explain(error, argv)}")


def define_config_file(name: str, default: str,
                       help_string: str) -> flags.FlagHolder[ml_collections.ConfigDict]:
  """config_flags.DEFINE_config_file, exiting with one line on a bad override.

  The default config file is loaded, and its `--<name>.<key>` overrides are
  looked up, as the flag is defined: an unknown key fails here.
  """
  try:
    return config_flags.DEFINE_config_file(name, default, help_string)
  except Exception as error:  # pylint: disable=broad-except
    _exit(error, sys.argv)


def parse_flags(argv: List[str]) -> List[str]:
  """absl flag parsing that exits with one line instead of a traceback."""
  try:
    remaining = flags.FLAGS(argv)
    # A config file that failed to load parses as a placeholder whose every
    # attribute access raises the loading error: make it raise here.
    for name in flags.FLAGS:
      getattr(flags.FLAGS[name].value, "_lpg_tf_loaded", None)
  except Exception as error:  # pylint: disable=broad-except
    _exit(error, argv)
  if flags.FLAGS.verbosity < 1:
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    absl_logging.get_absl_handler().addFilter(_from_lpg_tf_or_important)
  return remaining


ALL = "all"


def resolve_names(names: Sequence[str], valid: Sequence[str], flag: str,
                  kind: str) -> List[str]:
  """The names a list flag gives: "all" (every one of `valid`, in order) or
  names of `valid`, each once.

  Args:
    names: the flag's values (surrounding spaces ignored).
    valid: the names it may give.
    flag: the flag's name, for messages ("envs" for --envs).
    kind: what a name names, for messages ("environment").

  Raises:
    errors.ConfigError: an unknown name (the message lists the valid ones),
      a repeated one, or none.
  """
  resolved: List[str] = []
  for name in (n.strip() for n in names):
    for each in (valid if name == ALL else (name,)):
      if each not in valid:
        raise errors.ConfigError(
            f"Unknown {kind} {each!r} in --{flag}; valid: {ALL}, "
            f"{', '.join(valid)}")
      if each in resolved:
        raise errors.ConfigError(f"--{flag} names {each} twice")
      resolved.append(each)
  if not resolved:
    raise errors.ConfigError(f"--{flag} names no {kind}")
  return resolved


def config_value(config: ml_collections.ConfigDict, key: str) -> Any:
  """The value at the dotted `key` of `config` (e.g. "meta.learning_rate")."""
  node = config
  for part in key.split("."):
    node = node[part]
  return node


def with_values(config: ml_collections.ConfigDict,
                values: Mapping[str, Any]) -> ml_collections.ConfigDict:
  """A deep copy of `config` with the value at each dotted key of `values`
  replaced."""
  config = copy.deepcopy(config)
  for key, value in values.items():
    parent, _, leaf = key.rpartition(".")
    (config_value(config, parent) if parent else config)[leaf] = value
  return config
