"""Two processes on one machine (jax.distributed, one CPU device each) against one process."""

import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np

import ganjax
from tests.conftest import ROOT, forced_devices, run_cli

ARGS = (
  '--config=experiments/tiny.py',
  '--config.train.num_steps=6',
  '--config.train.log_every_steps=2',
  '--config.eval.every_steps=0',
  '--config.train.sample_every_steps=0',
  '--config.checkpoint.every_steps=0',
)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def test_two_processes_match_one_and_only_process_0_talks(tmp_path):
  port = _free_port()
  cluster = (
    '--config.train.distributed=True',
    f'--config.train.coordinator_address=localhost:{port}',
    '--config.train.num_processes=2',
    '--config.train.init_timeout_s=120',
  )
  env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
  procs = [
    subprocess.Popen(
      [
        sys.executable,
        '-m',
        'ganjax.main',
        *ARGS,
        f'--workdir={tmp_path}/two',
        *cluster,
        f'--config.train.process_id={i}',
      ],
      cwd=ROOT,
      env=env,
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )
    for i in range(2)
  ]
  outs = [p.communicate(timeout=600) for p in procs]
  for p, (_, err) in zip(procs, outs, strict=True):
    assert p.returncode == 0, err[-3000:]
  assert '6/6 [D loss:' in outs[0][0] and 'done: 6 steps' in outs[0][0]
  # Process 1 prints none of ganjax's lines (gloo's own connection line comes from C++).
  assert 'D loss' not in outs[1][0] and 'done:' not in outs[1][0] and 'step/s' not in outs[1][0], outs[1][0][-2000:]
  one = run_cli('ganjax.main', *ARGS, f'--workdir={tmp_path}/one')
  assert one.returncode == 0, one.stderr[-3000:]
  # One process with two (forced) CPU devices: the same data-parallel split as two processes.
  forced = run_cli('ganjax.main', *ARGS, f'--workdir={tmp_path}/forced', env=forced_devices(2))
  assert forced.returncode == 0 and 'on 2 device(s)' in forced.stdout, forced.stderr[-3000:]
  two_run, one_run = ganjax.restore(tmp_path / 'two'), ganjax.restore(tmp_path / 'one')
  assert two_run.step == one_run.step == 6
  _assert_runs_close(two_run, one_run)
  _assert_runs_close(two_run, ganjax.restore(tmp_path / 'forced'))
  # The 2-process checkpoint resumes in one process and lands where one uninterrupted process does.
  resumed = run_cli('ganjax.main', *ARGS, f'--workdir={tmp_path}/two', '--config.train.num_steps=10')
  assert resumed.returncode == 0 and 'resuming from the checkpoint at step 6' in resumed.stdout, resumed.stderr[-3000:]
  longer = run_cli('ganjax.main', *ARGS, f'--workdir={tmp_path}/ten', '--config.train.num_steps=10')
  assert longer.returncode == 0, longer.stderr[-3000:]
  _assert_runs_close(ganjax.restore(tmp_path / 'two'), ganjax.restore(tmp_path / 'ten'))
  # And the other way round: the 1-process checkpoint resumes in two processes.
  spread = run_cli(
    'ganjax.launch', '--processes=2', '--', *ARGS, f'--workdir={tmp_path}/one', '--config.train.num_steps=10'
  )
  assert spread.returncode == 0 and 'resuming from the checkpoint at step 6' in spread.stdout, spread.stderr[-3000:]
  _assert_runs_close(ganjax.restore(tmp_path / 'one'), ganjax.restore(tmp_path / 'ten'))


def _assert_runs_close(a, b):
  # Params, BatchNorm statistics and Adam moments. The absolute floor covers Adam's first moments of
  # near-zero gradients, which the devices' reduction order moves (measured: up to 1.2e-5 after 10 steps).
  for x, y in zip(jax.tree.leaves((a.g_state, a.d_state)), jax.tree.leaves((b.g_state, b.d_state)), strict=True):
    np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=1e-4, atol=3e-5)


def test_bad_cluster_fields_give_one_line(tmp_path):
  proc = run_cli('ganjax.main', *ARGS, f'--workdir={tmp_path}', '--config.train.process_id=1')
  assert proc.returncode == 1 and proc.stderr.strip().endswith('need train.distributed=True'), proc.stderr
  cluster = ('--config.train.distributed=True', '--config.train.num_processes=2', '--config.train.init_timeout_s=2')
  proc = run_cli(
    'ganjax.main',
    *ARGS,
    f'--workdir={tmp_path}',
    *cluster,
    '--config.train.coordinator_address=localhost:1',
    '--config.train.process_id=2',
  )
  assert proc.returncode == 1 and 'train.process_id=2 must be < train.num_processes=2' in proc.stderr, proc.stderr
  proc = run_cli(
    'ganjax.main',
    *ARGS,
    f'--workdir={tmp_path}',
    *cluster,
    f'--config.train.coordinator_address=localhost:{_free_port()}',
    '--config.train.process_id=1',
  )
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 1 and len(lines) == 1 and 'did not answer within' in lines[0], proc.stderr[-3000:]


def test_the_local_launcher_runs_n_processes_and_passes_process_0_through(tmp_path):
  proc = run_cli(
    'ganjax.launch', '--processes=2', '--', *ARGS, f'--workdir={tmp_path}', '--config.train.init_timeout_s=120'
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert proc.stdout.count('6/6 [D loss:') == 1 and 'done: 6 steps on 2 device(s)' in proc.stdout
  assert ganjax.restore(tmp_path).step == 6
  bad = run_cli('ganjax.launch', '--processes=2', '--', *ARGS, f'--workdir={tmp_path}', '--config.train.process_id=1')
  assert bad.returncode == 1 and bad.stderr.strip().splitlines() == [
    'ganjax: error: the launcher sets the cluster fields itself; drop --config.train.process_id'
  ]
  # Every process finds a batch that does not split over them; the launcher shows the line once.
  odd = run_cli(
    'ganjax.launch', '--processes=2', '--', *ARGS, f'--workdir={tmp_path}/odd', '--config.train.batch_size=3'
  )
  assert odd.returncode == 1 and odd.stderr.strip().splitlines() == [
    'ganjax: error: train.batch_size=3 is the global batch and must divide by the 2 devices in use '
    '(2 process(es) x 1 local)'
  ], odd.stderr


LONG = (
  '--config=experiments/tiny.py',
  '--config.train.num_steps=300',
  '--config.train.log_every_steps=1',
  '--config.eval.every_steps=0',
  '--config.train.sample_every_steps=0',
  '--config.train.init_timeout_s=120',
)


def _launch(*args: str) -> subprocess.Popen:
  env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
  cmd = [sys.executable, '-m', 'ganjax.launch', '--processes=2', '--', *args]
  return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _process(launcher: subprocess.Popen, process_id: int) -> int:
  """The pid of the launcher's child with this `train.process_id`."""
  children = pathlib.Path(f'/proc/{launcher.pid}/task/{launcher.pid}/children').read_text().split()
  for pid in children:
    cmdline = pathlib.Path(f'/proc/{pid}/cmdline').read_text()
    if f'--config.train.process_id={process_id}' in cmdline:
      return int(pid)
  raise AssertionError(f'no process {process_id} among {children}')


def _wait_for_step(launcher: subprocess.Popen, step: int) -> list[str]:
  """Reads process 0's log lines (through the launcher) up to the one of `step`."""
  seen = []
  for line in launcher.stdout:
    seen.append(line)
    match = re.search(r'(\d+)/300 \[D loss', line)
    if match and int(match.group(1)) >= step:
      return seen
  raise AssertionError(f'the run ended before step {step}: {"".join(seen)[-2000:]}')


def test_sigterm_to_one_process_stops_all_at_one_step_and_the_resume_matches(tmp_path):
  launcher = _launch(*LONG, f'--workdir={tmp_path}/two', '--config.checkpoint.every_steps=0')
  _wait_for_step(launcher, 10)
  os.kill(_process(launcher, 1), signal.SIGTERM)  # a preemption notice for one process only
  out, err = launcher.communicate(timeout=300)
  assert launcher.returncode == 0, err[-3000:]
  stopped = re.search(r'stopped by SIGTERM after step (\d+); checkpoint saved at step (\d+)', out)
  assert stopped and stopped.group(1) == stopped.group(2), out[-2000:]
  step = int(stopped.group(1))
  assert 10 <= step < 300
  # One complete checkpoint, at the common step (a process that stopped elsewhere would hang the save).
  assert sorted(int(p.name) for p in (tmp_path / 'two' / 'checkpoints').iterdir() if p.name.isdigit()) == [step]
  resumed = run_cli('ganjax.launch', '--processes=2', '--', *LONG, f'--workdir={tmp_path}/two')
  assert resumed.returncode == 0 and f'resuming from the checkpoint at step {step}' in resumed.stdout, resumed.stderr
  whole = run_cli('ganjax.main', *LONG, f'--workdir={tmp_path}/whole', env=forced_devices(2))
  assert whole.returncode == 0, whole.stderr[-3000:]
  _assert_runs_close(ganjax.restore(tmp_path / 'two'), ganjax.restore(tmp_path / 'whole'))


def test_sigkill_of_one_process_stops_the_other_with_one_line_and_resume_works(tmp_path):
  args = (
    *LONG,
    f'--workdir={tmp_path}/two',
    '--config.checkpoint.every_steps=20',
    '--config.train.heartbeat_timeout_s=5',
  )
  launcher = _launch(*args)
  _wait_for_step(launcher, 45)  # Orbax finished step 20's save before it began step 40's
  os.kill(_process(launcher, 1), signal.SIGKILL)
  t0 = time.monotonic()
  _, err = launcher.communicate(timeout=120)  # never hangs: the heartbeat timeout is 5 s
  assert time.monotonic() - t0 < 60
  assert launcher.returncode == 128 + signal.SIGKILL, err
  lines = err.strip().splitlines()
  assert len(lines) == 2, err  # one line per process
  assert any(line.startswith('ganjax: error: process 1 was killed by SIGKILL') for line in lines), err
  assert any(line.startswith('ganjax: error: process 0 ') and 'lost' in line for line in lines), err
  # The same command resumes from the last complete checkpoint and finishes as an uninterrupted run does.
  resumed = run_cli('ganjax.launch', '--processes=2', '--', *args[:-1])
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  at = int(re.search(r'resuming from the checkpoint at step (\d+)', resumed.stdout).group(1))
  assert at >= 20 and at % 20 == 0
  whole = run_cli('ganjax.main', *LONG, f'--workdir={tmp_path}/whole', env=forced_devices(2))
  assert whole.returncode == 0, whole.stderr[-3000:]
  _assert_runs_close(ganjax.restore(tmp_path / 'two'), ganjax.restore(tmp_path / 'whole'))


def test_a_sweep_with_periodic_evaluation_runs_in_two_processes_as_in_one(tmp_path):
  args = (
    '--config=experiments/tiny.py',
    '--config.sweep.field=seed',
    '--config.sweep.choices=(0, 1)',
    '--config.train.num_steps=4',
    '--config.train.log_every_steps=2',
    '--config.eval.every_steps=2',
    '--config.train.init_timeout_s=120',
  )
  two = run_cli('ganjax.launch', '--processes=2', '--', *args, f'--workdir={tmp_path}/two')
  assert two.returncode == 0 and 'done: 4 steps x 2 members on 2 device(s)' in two.stdout, two.stderr[-3000:]
  one = run_cli('ganjax.main', *args, f'--workdir={tmp_path}/one', env=forced_devices(2))
  assert one.returncode == 0, one.stderr[-3000:]
  for member in range(2):
    _assert_runs_close(ganjax.restore(tmp_path / 'two', member=member), ganjax.restore(tmp_path / 'one', member=member))
    fds = [
      [
        json.loads(line)['eval/fd']
        for line in (tmp_path / run / f'member_{member}' / 'metrics.jsonl').open()
        if 'eval/fd' in line
      ]
      for run in ('two', 'one')
    ]
    assert len(fds[0]) == 2
    np.testing.assert_allclose(fds[0], fds[1], rtol=1e-4)
