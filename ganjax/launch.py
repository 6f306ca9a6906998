"""Start N local processes of one multi-process run: `python -m ganjax.launch --processes N -- <main flags>`.

Every process runs `python -m ganjax.main <main flags>` with `train.distributed=True`, the
coordinator at localhost on a free port, `train.num_processes=N` and its own `train.process_id`,
so anyone can try several processes on one machine (on CPU each process sees its local devices,
e.g. one each with XLA's default). Process 0's stdout is passed through; the others' is dropped
(they print nothing of ganjax's). Every process' stderr goes to a log file, and its `ganjax:` lines
(errors, one line each) are passed through, so that a failure reads as one line per process and not
as pages of JAX's C++ runtime logs; the logs are kept when something failed and named then.
If one process fails, the others stop on their own (a lost process: within `train.heartbeat_timeout_s`);
the launcher waits that long and a grace period, then kills what is left, and exits with the status of
a process killed by a signal (the cause), else of the first process that failed. On a real cluster
use the cluster's launcher instead (docs/distributed.md: SLURM, TPU pods).
"""

import argparse
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time


def free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def commands(processes: int, main_flags: list[str], port: int) -> list[list[str]]:
  """The command line of each local process."""
  cluster = [
    '--config.train.distributed=True',
    f'--config.train.coordinator_address=localhost:{port}',
    f'--config.train.num_processes={processes}',
  ]
  return [
    [sys.executable, '-m', 'ganjax.main', *main_flags, *cluster, f'--config.train.process_id={i}']
    for i in range(processes)
  ]


GRACE_S = 30  # beyond the heartbeat timeout, before the launcher kills what is left of a failed run


def _heartbeat_s(flags: list[str]) -> float:
  """The run's `train.heartbeat_timeout_s` (a bad value is ganjax.main's to report; the default here)."""
  for f in flags:
    if f.startswith('--config.train.heartbeat_timeout_s='):
      try:
        return float(f.split('=', 1)[1])
      except ValueError:
        break
  return 100.0


_passed_on: set[str] = set()  # `ganjax:` lines already shown: every process reports a bad config the same way
_lock = threading.Lock()


def _tee(stream, log, lines: list[str]) -> None:
  """Copies a process' stderr to its log; passes its `ganjax:` lines on at once, each text once."""
  for line in stream:
    log.write(line)
    log.flush()
    if line.startswith('ganjax:'):
      lines.append(line)
      with _lock:
        if line not in _passed_on:
          _passed_on.add(line)
          sys.stderr.write(line)
          sys.stderr.flush()


def _what_happened(i: int, code: int, said: list[str], log: pathlib.Path) -> str | None:
  """One line for a process that failed without saying why itself (killed, or aborted by JAX)."""
  if code == 0 or said:
    return None
  if code < 0:
    name = signal.Signals(-code).name
    if -code == signal.SIGABRT and 'heartbeat' in log.read_text(errors='replace'):
      return f'ganjax: error: process {i} stopped: another process was lost (no heartbeat); its log: {log}'
    return f'ganjax: error: process {i} was killed by {name}; its log: {log}'
  return f'ganjax: error: process {i} exited with status {code}; its log: {log}'


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog='python -m ganjax.launch', description=__doc__.split('\n')[0])
  parser.add_argument('--processes', type=int, required=True, help='number of local processes (>= 1)')
  parser.add_argument('main_flags', nargs=argparse.REMAINDER, help='-- then the flags of ganjax.main')
  args = parser.parse_args(argv)
  flags = args.main_flags[1:] if args.main_flags[:1] == ['--'] else args.main_flags
  if args.processes < 1:
    parser.exit(1, f'ganjax: error: --processes must be >= 1, got {args.processes}\n')
  cluster_keys = ('distributed', 'coordinator_address', 'num_processes', 'process_id')
  taken = [f for f in flags if f.split('=')[0] in {f'--config.train.{k}' for k in cluster_keys}]
  if taken:
    parser.exit(1, f'ganjax: error: the launcher sets the cluster fields itself; drop {taken[0].split("=")[0]}\n')
  heartbeat = _heartbeat_s(flags)
  env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
  logs = pathlib.Path(tempfile.mkdtemp(prefix='ganjax-launch-'))
  procs, said, threads = [], [], []
  for i, cmd in enumerate(commands(args.processes, flags, free_port())):
    proc = subprocess.Popen(
      cmd, env=env, stdout=None if i == 0 else subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors='replace'
    )
    log = open(logs / f'process_{i}.log', 'w')  # noqa: SIM115 (closed by its thread's end below)
    said.append([])
    thread = threading.Thread(target=_tee, args=(proc.stderr, log, said[i]), daemon=True)
    thread.start()
    procs.append(proc)
    threads.append((thread, log))
  deadline, first = None, 0
  try:
    while any(p.poll() is None for p in procs):
      if deadline is None and any(p.poll() not in (None, 0) for p in procs):
        first = next(p.returncode for p in procs if p.returncode not in (None, 0))
        deadline = time.monotonic() + heartbeat + GRACE_S  # the others stop on their own by then
      if deadline is not None and time.monotonic() > deadline:
        for p in procs:
          if p.poll() is None:
            p.kill()
      time.sleep(0.2)
  except KeyboardInterrupt:
    for p in procs:
      if p.poll() is None:
        p.terminate()  # SIGTERM: ganjax saves a checkpoint and stops (all processes at one step)
    for p in procs:
      p.wait()
  for thread, log in threads:
    thread.join(timeout=5)
    log.close()
  codes = [p.returncode for p in procs]
  failed = [c for c in codes if c != 0]
  if not failed:
    shutil.rmtree(logs, ignore_errors=True)
    return 0
  for i, code in enumerate(codes):
    line = _what_happened(i, code, said[i], logs / f'process_{i}.log')
    if line:
      print(line, file=sys.stderr)
  # A process killed by a signal is the cause; the others' exits follow from losing it (and may be seen first).
  killed = [c for c in codes if c < 0]
  first = killed[0] if killed else (first or failed[0])
  return first if first > 0 else 128 - first  # killed by signal -n: the shell's 128 + n


if __name__ == '__main__':
  sys.exit(main())
