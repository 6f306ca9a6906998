"""Errors a user can act on. The entry point prints them as one line, without a traceback."""


class GanjaxError(Exception):
  """Base class: bad config, bad data, unusable workdir, divergence, bad checkpoint."""


class ConfigError(GanjaxError, ValueError):
  """A config that cannot be trained; the message names the field."""


class DataError(GanjaxError, ValueError):
  """Missing, corrupt or unsuitable data; the message names the file."""


class WorkdirError(GanjaxError, OSError):
  """A workdir that cannot be created or written."""


class DivergenceError(GanjaxError, FloatingPointError):
  """A non-finite metric; the message names the step and the metric."""


class CheckpointError(GanjaxError, ValueError):
  """A missing, corrupt or mismatched checkpoint; the message says what exists."""


class UnreadableCheckpointError(CheckpointError):
  """A checkpoint whose files cannot be read (truncated, corrupt), as opposed to one of another model."""
