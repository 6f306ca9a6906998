"""Provenance: which code, libraries and machine produced a run, in summary.json and in checkpoints."""

import json
import subprocess

import jax
import numpy as np
import pytest

import ganjax
from ganjax import provenance, train
from tests.conftest import ROOT, run_cli


def _short(config):
  config.train.num_steps = 4
  config.checkpoint.every_steps = 2
  config.eval.every_steps = 0
  config.train.sample_every_steps = 0
  return config


def test_summary_records_code_versions_and_machine(tmp_path, tiny_config):
  train.train_and_evaluate(_short(tiny_config), tmp_path)
  record = json.loads((tmp_path / 'summary.json').read_text())['provenance']
  head = subprocess.run(['git', '-C', str(ROOT), 'rev-parse', 'HEAD'], capture_output=True, text=True)
  if head.returncode == 0:  # a checkout: the commit, not the version
    assert record['code']['commit'] == head.stdout.strip()
    assert len(record['code']['commit_date']) == 10 and isinstance(record['code']['dirty'], bool)
  else:
    assert record['code'] == {'version': ganjax.__version__}
  assert set(record['versions']) == {'ganjax', 'jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint'}
  assert record['versions']['jax'] == jax.__version__
  assert record['backend'] == jax.default_backend() and record['device_count'] == jax.device_count()
  assert record['device_kind'] == jax.devices()[0].device_kind
  assert record['cpu_cores'] >= 1 and record['process_count'] == 1


def _meta_file(workdir, step):
  return workdir / 'checkpoints' / str(step) / 'meta' / 'metadata'


def test_checkpoint_records_versions_and_another_jax_says_so_in_one_line(tmp_path, tiny_config, capsys):
  train.train_and_evaluate(_short(tiny_config), tmp_path)
  meta = json.loads(_meta_file(tmp_path, 4).read_text())
  assert meta['versions'] == provenance.versions() and meta['code'] == provenance.code()
  capsys.readouterr()
  ganjax.restore(tmp_path)
  assert capsys.readouterr().err == ''  # the same JAX: silent
  meta['versions']['jax'] = '0.4.30'
  _meta_file(tmp_path, 4).write_text(json.dumps(meta))
  run = ganjax.restore(tmp_path)
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith('ganjax: note: step 4:'), err
  assert f'jax 0.4.30 -> {jax.__version__}' in err[0] and 'random streams' in err[0]
  assert run.step == 4
  # A checkpoint from before versions were recorded restores silently.
  del meta['versions']
  _meta_file(tmp_path, 4).write_text(json.dumps(meta))
  ganjax.restore(tmp_path)
  assert capsys.readouterr().err == ''


def test_resume_under_another_jax_says_so_and_still_resumes(tmp_path):
  args = ('--config=experiments/tiny.py', f'--workdir={tmp_path}', '--config.eval.every_steps=0')
  first = run_cli('ganjax.main', *args, '--config.train.num_steps=10')
  assert first.returncode == 0, first.stderr[-2000:]
  meta = json.loads(_meta_file(tmp_path, 10).read_text())
  meta['versions']['jaxlib'] = '0.4.30'
  _meta_file(tmp_path, 10).write_text(json.dumps(meta))
  resumed = run_cli('ganjax.main', *args, '--config.train.num_steps=12')
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  notes = [line for line in resumed.stderr.splitlines() if line.startswith('ganjax:')]
  assert len(notes) == 1 and 'jaxlib 0.4.30 ->' in notes[0], resumed.stderr
  assert 'resuming from the checkpoint at step 10' in resumed.stdout


def test_describe_code():
  assert provenance.describe_code({'version': '0.1.0'}) == 'ganjax 0.1.0'
  info = {'commit': 'abcdef0123456789', 'commit_date': '2026-12-02', 'dirty': False}
  assert provenance.describe_code(info) == 'commit abcdef0 of 2026-12-02'
  assert provenance.describe_code({**info, 'dirty': True}).endswith('(with uncommitted changes)')


@pytest.mark.parametrize(
  'sweep', [(), ('--config.sweep.field=seed', '--config.sweep.choices=(0, 1)')], ids=['plain', 'sweep']
)
def test_cached_compilation_gives_the_same_numbers(tmp_path, sweep):
  """The compilation cache only saves time: a second run from cached programs writes the same metrics."""
  env = {'GANJAX_COMPILATION_CACHE': str(tmp_path / 'cache'), 'JAX_COMPILATION_CACHE_DIR': ''}
  for name in ('cold', 'warm'):
    proc = run_cli('ganjax.main', '--config=experiments/tiny.py', f'--workdir={tmp_path / name}', *sweep, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
  assert list((tmp_path / 'cache').glob('*-cache'))
  logs = sorted(p.relative_to(tmp_path / 'cold') for p in (tmp_path / 'cold').rglob('metrics.jsonl'))
  assert len(logs) == (2 if sweep else 1)
  for log in logs:
    assert (tmp_path / 'cold' / log).read_text() == (tmp_path / 'warm' / log).read_text(), log
  np.testing.assert_array_equal(
    ganjax.sample(ganjax.restore(tmp_path / 'cold', member=0 if sweep else None), 4),
    ganjax.sample(ganjax.restore(tmp_path / 'warm', member=0 if sweep else None), 4),
  )


def test_a_run_records_the_code_it_started_with(tmp_path, tiny_config, monkeypatch):
  """A commit or an edit while a run trains does not change what the run says trained it."""
  at_start = {'commit': 'a' * 40, 'commit_date': '2026-01-01', 'dirty': False}
  later = {'commit': 'b' * 40, 'commit_date': '2026-01-02', 'dirty': True}
  answers = iter([at_start])
  monkeypatch.setattr(provenance, 'code', lambda: next(answers, later))
  train.train_and_evaluate(_short(tiny_config), tmp_path)
  assert json.loads((tmp_path / 'summary.json').read_text())['provenance']['code'] == at_start
  assert json.loads(_meta_file(tmp_path, 4).read_text())['code'] == at_start
