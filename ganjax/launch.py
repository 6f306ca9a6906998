"""Start N local processes of one multi-process run: `python -m ganjax.launch --processes N -- <main flags>`.

Every process runs `python -m ganjax.main <main flags>` with `train.distributed=True`, the
coordinator at localhost on a free port, `train.num_processes=N` and its own `train.process_id`,
so anyone can try several processes on one machine (on CPU each process sees its local devices,
e.g. one each with XLA's default). Process 0's output is passed through; the others' stdout is
dropped (they print nothing of ganjax's) and their stderr is passed through, as they print errors only.
If one process fails, the others are stopped and the launcher exits with its exit status.
On a real cluster use the cluster's launcher instead (README: SLURM, TPU pods).
"""

import argparse
import os
import socket
import subprocess
import sys
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
  env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
  procs = [
    subprocess.Popen(cmd, env=env, stdout=None if i == 0 else subprocess.DEVNULL)
    for i, cmd in enumerate(commands(args.processes, flags, free_port()))
  ]
  try:
    while True:
      codes = [p.poll() for p in procs]
      failed = [c for c in codes if c not in (None, 0)]
      if failed or all(c == 0 for c in codes):
        break
      time.sleep(0.2)
  except KeyboardInterrupt:
    failed = [130]
  finally:
    for p in procs:
      if p.poll() is None:
        p.terminate()  # SIGTERM: ganjax saves a checkpoint and stops
    for p in procs:
      p.wait()
  if not failed:
    return 0
  return failed[0] if failed[0] > 0 else 128 - failed[0]  # killed by signal -n: the shell's 128 + n


if __name__ == '__main__':
  sys.exit(main())
