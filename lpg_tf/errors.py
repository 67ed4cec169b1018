"""Exceptions for bad user input: raised before any work, caught by launchers."""


class ConfigError(ValueError):
  """An argument, flag or config value is invalid; the message says which and why."""
