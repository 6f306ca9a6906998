"""ganjax.dynamics: the game's Jacobian eigenvalues against closed forms, and Arnoldi against the exact ones."""

import numpy as np
import pytest

import ganjax
from ganjax import dynamics, train
from ganjax.config import load_experiment
from tests.conftest import EXPERIMENTS, run_cli


def _dirac_at_equilibrium(tmp_path, r1=0.0):
  config = load_experiment(EXPERIMENTS / 'dirac_gan.py')
  config.model.dirac_init = (0.0, 0.0)  # the field vanishes there: the run stays put
  config.loss.r1_weight = r1
  config.train.num_steps = 1
  train.train_and_evaluate(config, tmp_path)
  return ganjax.restore(tmp_path)


@pytest.mark.parametrize('gamma', [0.0, 0.3, 2.0])
def test_dirac_eigenvalues_match_the_closed_forms(tmp_path, gamma):
  run = _dirac_at_equilibrium(tmp_path, gamma)
  assert float(run.g_state.params['theta']) == 0.0 and float(run.d_state.params['psi']) == 0.0
  f1 = 0.5  # f'(0) of f(t) = -log(1 + exp(-t)), ganjax's BCE on logits
  want = np.roots([1.0, gamma, f1**2])  # (-gamma +- sqrt(gamma^2 - 4 f'(0)^2)) / 2; +-i f'(0) for gamma = 0
  got = dynamics.eigenvalues(run)
  np.testing.assert_allclose(np.sort_complex(got), np.sort_complex(want), atol=1e-6)


def test_arnoldi_top_k_matches_the_exact_eigenvalues_on_a_toy_model(tmp_path):
  config = load_experiment(EXPERIMENTS / 'toy_ring8.py')
  config.model.g_features = (8, 8)
  config.model.d_features = (8, 8)
  config.model.latent_dim = 2
  config.model.g_norm = 'none'
  config.train.batch_size = 32
  config.train.num_steps = 50
  config.eval.every_steps = 0
  config.train.sample_every_steps = 0
  train.train_and_evaluate(config, tmp_path)
  run = ganjax.restore(tmp_path)
  exact = dynamics.eigenvalues(run)
  k = 6
  top = dynamics.eigenvalues(run, top=k)
  largest = exact[np.argsort(-np.abs(exact))][:k]
  np.testing.assert_allclose(np.sort(np.abs(top)), np.sort(np.abs(largest)), rtol=1e-3)
  for value in top:  # each Arnoldi eigenvalue is one of the exact ones
    assert np.min(np.abs(exact - value)) < 1e-3 * np.abs(value)


def test_cli_prints_one_line_per_eigenvalue_and_a_plot(tmp_path):
  _dirac_at_equilibrium(tmp_path)
  proc = run_cli('ganjax.dynamics', f'--workdir={tmp_path}')
  assert proc.returncode == 0, proc.stderr
  assert proc.stdout.splitlines() == ['eig re=0 im=0.5', 'eig re=0 im=-0.5'] or proc.stdout.splitlines() == [
    'eig re=-0 im=0.5',
    'eig re=-0 im=-0.5',
  ]
  assert (tmp_path / 'eigenvalues_step_000001.png').is_file()


def test_bad_requests_get_one_line(tmp_path):
  _dirac_at_equilibrium(tmp_path / 'dirac')
  proc = run_cli('ganjax.dynamics', f'--workdir={tmp_path / "dirac"}', '--top=5')
  assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [
    'ganjax: error: --top=5 does not fit this model of 2 parameters (ARPACK needs 1 <= K <= parameters - 2); '
    'leave out --top for all eigenvalues'
  ]
  config = load_experiment(EXPERIMENTS / 'tiny.py')
  config.train.num_steps = 1
  config.eval.every_steps = 0
  train.train_and_evaluate(config, tmp_path / 'tiny')
  proc = run_cli('ganjax.dynamics', f'--workdir={tmp_path / "tiny"}')
  assert proc.returncode == 1
  (line,) = proc.stderr.strip().splitlines()
  assert line.startswith('ganjax: error: the model has') and 'pass --top K' in line
