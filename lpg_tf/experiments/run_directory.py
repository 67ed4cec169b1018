"""A meta-training run directory that is always either resumable or startable.

`open_run` is the one way in. It decides, before any training work, whether the
directory starts a new run or continues the one it holds:

  * nothing there (or an empty directory): a new run; `config.json` is written
    atomically (a temporary file renamed into place);
  * `config.json` with the same config (up to the fields a resumed run may
    change): the run continues from its newest intact checkpoint, or from step
    0 if it was stopped before its first checkpoint;
  * `config.json` with another config: refused, naming the differing fields.
    A key the saved config lacks because it was added to the configs after
    the run started reads as the value that keeps the older behaviour
    (`open_run`'s `added_fields`), so such a run still continues.

While the run lives it holds an exclusive lock (`fcntl.flock` on `DIR/.lock`,
which records the holder's pid), so a second trainer on the same directory gets
a clear error instead of writing over the first one's checkpoints. The kernel
releases the lock when the process dies, even by kill -9.

At start, temporaries a killed run leaves behind (`.rule.tmp-*`, `.rule.old-*`,
the same for `best_rule`, `checkpoints/ckpt-N_temp`, `*.tempstate*`) are
removed, and checkpoints that cannot be read back in full (a write cut short,
flipped bytes) are moved to `checkpoints/corrupt/` with a warning that names
them.
"""

import contextlib
import errno
import fcntl
import glob
import json
import os
import re
import shutil
import tempfile
from typing import Any, Dict, Iterator, Mapping, Optional, Sequence, Tuple

from absl import logging
import tensorflow as tf

from lpg_tf import errors

CONFIG_NAME = "config.json"
CHECKPOINT_DIR = "checkpoints"
RULE_DIR = "rule"
BEST_RULE_DIR = "best_rule"
LOCK_NAME = ".lock"
CORRUPT_DIR = "corrupt"
CHECKPOINT_PREFIX = "ckpt"
_INDEX = re.compile(rf"^{CHECKPOINT_PREFIX}-(\d+)\.index$")
# What a killed save or export leaves: export.py's staging directories, the
# sharded checkpoint writer's `<prefix>_temp` directory, TensorFlow's temporary
# files of an atomic write.
_STALE_PATTERNS = (f".{RULE_DIR}.tmp-*", f".{RULE_DIR}.old-*",
                   f".{BEST_RULE_DIR}.tmp-*", f".{BEST_RULE_DIR}.old-*",
                   os.path.join(CHECKPOINT_DIR, "*_temp"),
                   os.path.join(CHECKPOINT_DIR, "*.tempstate*"),
                   os.path.join(CHECKPOINT_DIR, ".*.tmp-*"),
                   f".{CONFIG_NAME}.tmp-*")


class RunError(RuntimeError):
  """The run cannot start or go on; the message says why and what to do."""


class RunLock:
  """An exclusive lock on a run directory, held for the run's life."""

  def __init__(self, workdir: str):
    """Takes the lock or raises RunError naming the holder's pid."""
    path = os.path.join(workdir, LOCK_NAME)
    try:
      self._file = open(path, "a+")  # pylint: disable=consider-using-with
    except OSError as e:
      raise RunError(f"Cannot write to the run directory {workdir}: "
                     f"{e.strerror}") from e
    try:
      fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      self._file.seek(0)
      holder = self._file.read().strip() or "unknown"
      self._file.close()
      raise RunError(  # pylint: disable=raise-missing-from
          f"The run directory {workdir} is in use by another trainer (pid "
          f"{holder}); wait for it to finish or stop it, or choose another "
          "directory")
    self._file.seek(0)
    self._file.truncate()
    self._file.write(f"{os.getpid()}\n")
    self._file.flush()

  def release(self) -> None:
    """Lets another trainer take the directory."""
    if not self._file.closed:
      fcntl.flock(self._file, fcntl.LOCK_UN)
      self._file.close()

  def __enter__(self) -> "RunLock":
    return self

  def __exit__(self, *exc_info) -> None:
    self.release()


def check_location(workdir: str, must_exist: bool) -> None:
  """Raises RunError for a path that cannot hold a run; writes nothing."""
  if not workdir:
    raise errors.ConfigError("--workdir is required")
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise RunError(f"--workdir {workdir} exists and is not a directory")
  if must_exist and not os.path.isdir(workdir):
    raise RunError(f"--resume: {workdir} does not exist; start without --resume")


def _create(workdir: str) -> None:
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise RunError(f"Cannot create the run directory {workdir}: "
                   f"{e.strerror}") from e


def remove_stale_temporaries(workdir: str) -> None:
  """Deletes what a killed save or export left behind (see module docstring)."""
  for pattern in _STALE_PATTERNS:
    for path in glob.glob(os.path.join(workdir, pattern)):
      logging.info("Removing %s, left by an interrupted save", path)
      if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
      else:
        os.remove(path)


def checkpoint_numbers(checkpoint_dir: str) -> Sequence[int]:
  """The step numbers of the checkpoints on disk, ascending."""
  if not os.path.isdir(checkpoint_dir):
    return []
  return sorted(int(m.group(1)) for m in map(_INDEX.match, os.listdir(checkpoint_dir))
                if m)


def checkpoint_path(checkpoint_dir: str, number: int) -> str:
  return os.path.join(checkpoint_dir, f"{CHECKPOINT_PREFIX}-{number}")


def read_problem(prefix: str) -> Optional[str]:
  """Why the checkpoint at `prefix` cannot be read back in full; None if it can.

  Reads every tensor: the index, the data's length and every checksum.
  """
  try:
    reader = tf.train.load_checkpoint(prefix)
    for name in reader.get_variable_to_shape_map():
      reader.get_tensor(name)
  except (tf.errors.OpError, ValueError, IndexError, OSError) as e:
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
  return None


def newest_intact_checkpoint(checkpoint_dir: str) -> Optional[str]:
  """The newest checkpoint that reads back in full, or None.

  Newer checkpoints that do not are moved to `checkpoints/corrupt/` with a
  warning naming each; the `checkpoint` state file is rewritten to list what
  remains, so the next save carries on from there.
  """
  numbers = list(checkpoint_numbers(checkpoint_dir))
  newest = None
  while numbers:
    prefix = checkpoint_path(checkpoint_dir, numbers[-1])
    problem = read_problem(prefix)
    if problem is None:
      newest = prefix
      break
    numbers.pop()
    corrupt = os.path.join(checkpoint_dir, CORRUPT_DIR)
    os.makedirs(corrupt, exist_ok=True)
    for path in glob.glob(prefix + ".*"):
      os.replace(path, os.path.join(corrupt, os.path.basename(path)))
    logging.warning("Skipped the unreadable checkpoint %s (%s); moved it to %s",
                    prefix, problem, corrupt)
  state_file = os.path.join(checkpoint_dir, "checkpoint")
  if newest is None:
    if os.path.exists(state_file):
      os.remove(state_file)
    return None
  # The CheckpointState text proto that tf.train.CheckpointManager reads.
  names = [os.path.basename(checkpoint_path(checkpoint_dir, n)) for n in numbers]
  write_atomically(state_file, f"model_checkpoint_path: {json.dumps(names[-1])}\n"
                    + "".join(f"all_model_checkpoint_paths: {json.dumps(n)}\n"
                              for n in names))
  return newest


def write_atomically(path: str, text: str) -> None:
  """Writes `path` through a temporary file renamed into place."""
  directory, name = os.path.split(path)
  handle, temporary = tempfile.mkstemp(prefix=f".{name}.tmp-", dir=directory)
  with os.fdopen(handle, "w") as f:
    f.write(text)
  os.chmod(temporary, 0o644)
  os.replace(temporary, path)


def _write_config(workdir: str, config_json: Dict[str, Any]) -> None:
  """Writes config.json atomically: never a half-written file."""
  write_atomically(os.path.join(workdir, CONFIG_NAME),
                    json.dumps(config_json, indent=2, sort_keys=True))


def _read_config(workdir: str) -> Optional[Dict[str, Any]]:
  path = os.path.join(workdir, CONFIG_NAME)
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise RunError(f"Cannot read {path} ({e}); it is not an lpg_tf run "
                   "directory, or its config was damaged") from e


def _with_added_fields(saved: Dict[str, Any],
                       added_fields: Mapping[str, Any]) -> Dict[str, Any]:
  """`saved` with every dotted key of `added_fields` it lacks set to the
  key's value there (e.g. "rule.kind": "lpg")."""
  saved = json.loads(json.dumps(saved))  # A deep copy.
  for key, value in added_fields.items():
    *path, name = key.split(".")
    section = saved
    for part in path:
      section = section.setdefault(part, {})
    section.setdefault(name, value)
  return saved


def _leaves(config: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
  """`config`'s values by dotted key ("meta.learning_rate")."""
  leaves = {}
  for key, value in config.items():
    if isinstance(value, dict) and value:
      leaves.update(_leaves(value, f"{prefix}{key}."))
    else:
      leaves[f"{prefix}{key}"] = value
  return leaves


def _differences(saved: Dict[str, Any], current: Dict[str, Any],
                 resumable_fields: Sequence[str]) -> Sequence[str]:
  """The config values that differ, but for `resumable_fields` (dotted keys:
  a field covers the keys under it)."""
  saved, current = _leaves(saved), _leaves(current)

  def resumable(key: str) -> bool:
    return any(key == field or key.startswith(field + ".")
               for field in resumable_fields)

  keys = {k for k in set(saved) | set(current) if not resumable(k)}
  return [f"{k}: saved {saved.get(k)!r}, now {current.get(k)!r}"
          for k in sorted(keys) if saved.get(k) != current.get(k)]


def open_run(workdir: str, config_json: Dict[str, Any],
             resumable_fields: Sequence[str], resume: bool,
             init_rule: Optional[str],
             added_fields: Optional[Mapping[str, Any]] = None
            ) -> Tuple[RunLock, Optional[str]]:
  """Locks `workdir` and decides how the run starts (module docstring).

  Args:
    workdir: the run directory; created if missing.
    config_json: the run's config as JSON data.
    resumable_fields: config fields a continued run may change (top-level
      or dotted, e.g. "meta.learning_rate").
    resume: the user asked to continue a run (`--resume`): a directory with no
      run is then an error.
    init_rule: the run starts eta from this exported rule; refused for a
      directory that already holds checkpoints.
    added_fields: dotted config keys added after runs existed, with the value
      that reproduces the behaviour of runs that predate them; a saved config
      without such a key reads as having that value.

  Returns:
    The held lock (release it when the run ends) and the checkpoint to restore,
    or None to start from step 0.

  Raises:
    errors.ConfigError: the directory holds a run with another config.
    RunError: the directory is in use, cannot be written, or holds no run
      although `resume` was asked.
  """
  check_location(workdir, must_exist=resume)
  _create(workdir)
  lock = RunLock(workdir)
  try:
    remove_stale_temporaries(workdir)
    checkpoint_dir = os.path.join(workdir, CHECKPOINT_DIR)
    saved = _read_config(workdir)
    if saved is None:
      if checkpoint_numbers(checkpoint_dir):
        raise RunError(f"{workdir} holds checkpoints but no {CONFIG_NAME}; it "
                       "was not written by this trainer")
      if resume:
        raise RunError(f"--resume: no checkpoint under {checkpoint_dir}; start "
                       "without --resume")
      _write_config(workdir, config_json)
      logging.info("Starting a new run in %s", workdir)
      return lock, None
    saved = _with_added_fields(saved, added_fields or {})
    differing = _differences(saved, config_json, resumable_fields)
    if differing:
      raise errors.ConfigError(
          f"{workdir} holds a run written by another config "
          f"({'; '.join(differing)}). Only {', '.join(resumable_fields)} may "
          "change when a run continues; choose a new --workdir for another "
          "config")
    # The resumable fields (run length, periods) take the current values.
    _write_config(workdir, config_json)
    newest = newest_intact_checkpoint(checkpoint_dir)
    if newest is not None and init_rule:
      raise errors.ConfigError(
          f"{workdir} already holds a run (checkpoint {newest}); --init_rule "
          "only starts a new run: drop it to continue this one, or choose a "
          "new --workdir")
    if newest is None:
      logging.info("%s holds this config but no checkpoint yet: starting it "
                   "from step 0", workdir)
    else:
      logging.info("%s holds this run: continuing from %s", workdir, newest)
    return lock, newest
  except BaseException:
    lock.release()
    raise


def used_bytes(paths: Sequence[str]) -> int:
  """Bytes in the files at `paths` (directories walked, missing paths 0)."""
  total = 0
  for path in paths:
    if os.path.isfile(path):
      total += os.path.getsize(path)
    for root, _, files in os.walk(path):
      total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
  return total


def _is_out_of_space(error: BaseException) -> bool:
  if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
    return True
  return "No space left on device" in str(error) or "Disk quota exceeded" in str(error)


@contextlib.contextmanager
def out_of_space_errors(path: str, needed_bytes: int) -> Iterator[None]:
  """Turns a full disk while writing `path` into a one-line RunError."""
  try:
    yield
  except (OSError, tf.errors.OpError) as e:
    if not _is_out_of_space(e):
      raise
    parent = path
    while not os.path.isdir(parent):
      parent = os.path.dirname(parent)
    free = shutil.disk_usage(parent).free
    raise RunError(
        f"No space left on the device writing {path}: it needs about "
        f"{needed_bytes / 2**20:.1f} MiB, {free / 2**20:.1f} MiB are free. The "
        "previous checkpoint is intact; free some space and run the same "
        "command again to continue") from e
