"""SIGTERM and SIGINT as requests to stop at the next safe point.

Preemptible machines and TPU maintenance send SIGTERM, a user presses Ctrl-C
(SIGINT). Inside `StopRequests`, the first such signal only records itself: the
training loop checks `requested` after each step, saves and exits. A second
signal stops the process at once, with the same exit status.

Python delivers signals to the main thread only, and only there may handlers be
installed. A run inside a worker thread (a Ray Tune trial runs its function in
one) leaves the signals to whoever owns the process: `StopRequests` then
records nothing and the process's owner stops it.
"""

import signal
import sys
import threading
import types
from typing import Optional

from absl import logging

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def exit_status(signal_number: int) -> int:
  """The shell's status for a process ended by `signal_number`: 128 + n."""
  return 128 + signal_number


class StopRequests:
  """Records SIGTERM/SIGINT while active; restores the previous handlers on exit."""

  def __init__(self):
    self.requested: Optional[int] = None
    self._previous = {}

  def _handle(self, signal_number: int, frame: Optional[types.FrameType]) -> None:
    del frame
    name = signal.Signals(signal_number).name
    if self.requested is not None:
      logging.warning("%s again: stopping now, without saving", name)
      sys.exit(exit_status(signal_number))
    self.requested = signal_number
    logging.warning("%s received: stopping after the current step (a second "
                    "signal stops at once)", name)

  def __enter__(self) -> "StopRequests":
    if threading.current_thread() is not threading.main_thread():
      return self
    for number in SIGNALS:
      self._previous[number] = signal.signal(number, self._handle)
    return self

  def __exit__(self, *exc_info) -> None:
    for number, handler in self._previous.items():
      signal.signal(number, handler)


class Stopped(Exception):
  """A run stopped by a signal after saving; `exit_status` is 128 + signal."""

  def __init__(self, signal_number: int, step: int):
    name = signal.Signals(signal_number).name
    super().__init__(f"Stopped by {name} at step {step}, after saving a "
                     "checkpoint and the rule; run the same command to continue")
    self.exit_status = exit_status(signal_number)
