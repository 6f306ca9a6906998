"""Several processes, one run: joining the cluster, and leaving at once when another process is lost.

`initialize` calls `jax.distributed.initialize` with the config's cluster fields (or JAX's own
detection of TPU pods, SLURM and Open MPI when they are empty), after waiting for the coordinator
so that a missing process 0 gives one line instead of JAX's fatal C++ error. `exit_if_lost_a_process`
turns the error a collective raises when another process died into one line and an immediate exit.
"""

import os
import socket
import sys
import time

import ml_collections

from ganjax.errors import ConfigError


def initialize(t: ml_collections.ConfigDict) -> None:
  """jax.distributed.initialize with the `train` section's cluster fields; ConfigError if it cannot join."""
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


def exit_if_lost_a_process(e: Exception) -> None:
  """If `e` says another process of the run is gone: one line on stderr and exit 1 at once; else nothing."""
  if not any(mark in str(e) for mark in _LOST):
    return
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
