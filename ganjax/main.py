"""Entry point: `python -m ganjax.main --config=experiments/mnist_gan.py --workdir=runs/mnist_gan`.

Overrides go on the command line, e.g. `--config.train.num_steps=200`.
"""

import os
import pathlib
import socket
import sys
import time

from absl import app, flags, logging
from ml_collections import config_flags

from ganjax import config as config_lib
from ganjax import host, models, train
from ganjax.errors import ConfigError, GanjaxError

_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, metrics and samples.', required=True)
_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file.', lock_config=True)
flags.mark_flags_as_required(['config'])


def _one_line(error: BaseException) -> str:
  # config_flags wraps KeyErrors in AttributeErrors; show the innermost message.
  while isinstance(error, BaseException) and error.args:
    error = error.args[0]
  return str(error).replace('\n', ' ')


def _shipped_config(argv: list[str]) -> list[str]:
  """argv with `--config=NAME` pointing at the shipped experiment NAME when no such file is here."""
  out = []
  for arg in argv:
    if arg.startswith('--config=') and not pathlib.Path(arg.split('=', 1)[1]).is_file():
      path = arg.split('=', 1)[1]
      resolved = config_lib.resolve_experiment(path)
      if not resolved.is_file():
        names = ', '.join(config_lib.shipped_experiments())
        sys.exit(f'ganjax: error: bad --config: no config file {path}; shipped experiments: {names}')
      arg = f'--config={resolved}'
    out.append(arg)
  return out


def _parse_flags(argv: list[str]) -> list[str]:
  """absl's parser, with a bad config file or override reported in one line instead of a traceback."""
  argv = _shipped_config(argv)
  for arg in argv:
    for old, new in config_lib.RENAMED.items():
      if arg.startswith(f'--config.{old}='):
        sys.exit(f'ganjax: error: {old} is now {new} (same values, and more); rename it: --config.{new}=...')
  try:
    argv = flags.FLAGS(argv)
    _CONFIG.value.get('seed')  # a config file that failed to load raises its error here
  except flags.Error as e:
    sys.exit(f'ganjax: error: {e}')
  except (AttributeError, KeyError, TypeError, ValueError, OSError, ImportError, SyntaxError) as e:
    sys.exit(f'ganjax: error: bad --config: {_one_line(e)}')
  return argv


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)  # Orbax logs every save step at INFO.
  host.prepare()  # before JAX starts its threads or compiles
  try:
    config_lib.validate(_CONFIG.value)  # before any JAX work, the cluster's included
    models.prefer_eigen_convolutions(_CONFIG.value.model)
    if _CONFIG.value.train.distributed:
      _initialize_distributed(_CONFIG.value.train)
    train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  except GanjaxError as e:
    sys.exit(f'ganjax: error: {" ".join(str(e).split())}')
  except Exception as e:
    if not (_CONFIG.value.train.distributed and _lost_a_process(e)):
      raise
    import jax

    # One line, then out at once: JAX's shutdown would wait at a barrier for the lost process and
    # then abort with a page of C++ logs.
    print(
      f'ganjax: error: process {jax.process_index()} lost contact with another process of the run '
      f'({str(e).strip().splitlines()[0][:200]}); resume from the last complete checkpoint by running the same command',
      file=sys.stderr,
      flush=True,
    )
    os._exit(1)


# What a collective or JAX's coordination service raises when another process has died.
_LOST = ('Gloo', 'Connection closed', 'Connection reset', 'heartbeat', 'UNAVAILABLE', 'Barrier failed')


def _lost_a_process(e: Exception) -> bool:
  return any(mark in str(e) for mark in _LOST)


def _wait_for_coordinator(address: str, timeout_s: float) -> None:
  """Waits until process 0's coordinator accepts connections; ConfigError after `timeout_s`."""
  host, _, port = address.rpartition(':')
  if not host or not port.isdigit():
    raise ConfigError(f"train.coordinator_address must be 'host:port', got {address!r}")
  deadline = time.monotonic() + timeout_s
  while True:
    try:
      socket.create_connection((host, int(port)), timeout=min(5.0, timeout_s)).close()
      return
    except OSError as e:
      if time.monotonic() >= deadline:
        raise ConfigError(
          f'the coordinator at {address} did not answer within train.init_timeout_s={timeout_s} s ({e}); '
          'is process 0 running?'
        ) from e
      time.sleep(0.5)


def _initialize_distributed(t) -> None:
  """jax.distributed.initialize with the config's cluster fields, or JAX's detection when they are empty."""
  import jax

  kwargs = {'initialization_timeout': t.init_timeout_s, 'heartbeat_timeout_seconds': t.heartbeat_timeout_s}
  if t.coordinator_address and t.process_id > 0:
    # JAX's client aborts the process (a C++ fatal error, many lines) when the coordinator never answers.
    _wait_for_coordinator(t.coordinator_address, t.init_timeout_s)
  if t.coordinator_address:
    kwargs.update(coordinator_address=t.coordinator_address, num_processes=t.num_processes, process_id=t.process_id)
  try:
    jax.distributed.initialize(**kwargs)  # before any computation
  except Exception as e:  # JAX raises RuntimeError, ValueError or XlaRuntimeError here
    where = t.coordinator_address or 'the detected cluster'
    raise ConfigError(f'could not join {where} within train.init_timeout_s={t.init_timeout_s}: {e}') from e


if __name__ == '__main__':
  app.run(main, flags_parser=_parse_flags)
