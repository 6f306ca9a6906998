"""Update rules on games with known answers, through ganjax's own train step.

The Dirac-GAN with the Wasserstein loss is the bilinear game min_theta max_psi psi * theta: its
field is a pure rotation around (0, 0). From (1, 1), plain simultaneous gradient descent spirals
out, alternating updates stay on a bounded orbit, and extragradient, optimistic gradient descent
and consensus optimisation spiral in.
"""

import jax
import numpy as np
import pytest

from ganjax import objectives, states, train, train_step
from ganjax.config import load_experiment
from ganjax.errors import ConfigError
from ganjax.validate import validate
from tests.conftest import EXPERIMENTS, run_cli

STEPS = 300


def _dirac(**overrides):
  config = load_experiment(EXPERIMENTS / 'dirac_gan.py')
  config.loss.name = 'wgan'
  for key, value in overrides.items():
    section, leaf = key.split('__')
    config[section][leaf] = value
  validate(config)
  return config


def _distances(config, steps=STEPS):
  g_state, d_state = states.create_states(config, jax.random.key(0))
  cfg = objectives.StepConfig.from_config(config)
  step = jax.jit(lambda g, d, b, k: train_step.train_step(g, d, b, k, cfg))
  batch = {'image': np.zeros((8, 1), np.float32)}
  out = []
  for i in range(steps):
    g_state, d_state, metrics = step(g_state, d_state, batch, jax.random.key(i))
    out.append(float(metrics['dirac/distance']))
  np.testing.assert_allclose(out[-1], np.hypot(float(g_state.params['theta']), float(d_state.params['psi'])), rtol=1e-6)
  return np.array(out)


START = np.sqrt(2.0)  # (theta, psi) = (1, 1)


def test_simultaneous_gradient_descent_spirals_out_of_the_bilinear_game():
  d = _distances(_dirac(train__update_rule='simultaneous'))
  # theta^2 + 2 psi^2 grows by (1 + a^2 / 2) every step; the Euclidean distance grows orbit by orbit.
  assert d[-1] > 1.5 * START and d[200:].max() > d[100:200].max() > d[:100].max()


def test_alternating_updates_stay_on_a_bounded_orbit():
  d = _distances(_dirac(train__update_rule='alternating'))
  assert d.min() > 0.5 * START and d.max() < 1.5 * START


@pytest.mark.parametrize(
  'overrides',
  [
    {'train__update_rule': 'extragradient'},
    {'train__update_rule': 'optimistic'},
    {'train__update_rule': 'simultaneous', 'loss__consensus_weight': 0.5},
  ],
  ids=['extragradient', 'optimistic', 'consensus'],
)
def test_extragradient_optimistic_and_consensus_spiral_in(overrides):
  d = _distances(_dirac(**overrides))
  assert d[-1] < 0.5 * START and d[-1] < d[len(d) // 2] < d[0]


def test_extragradient_updates_from_the_look_ahead_field():
  # By hand on the bilinear game, SGD at rate a: D minimises 0.5 * psi * theta (the joint update's
  # half of the Wasserstein loss), G minimises -psi * theta.
  config = _dirac(train__update_rule='extragradient')
  a = config.opt.g_lr
  theta, psi = 1.0, 1.0
  look_theta, look_psi = theta + a * psi, psi - a * 0.5 * theta
  want = (theta + a * look_psi, psi - a * 0.5 * look_theta)
  g_state, d_state = states.create_states(config, jax.random.key(0))
  cfg = objectives.StepConfig.from_config(config)
  g_state, d_state, _ = train_step.train_step(
    g_state, d_state, {'image': np.zeros((8, 1), np.float32)}, jax.random.key(0), cfg
  )
  np.testing.assert_allclose((float(g_state.params['theta']), float(d_state.params['psi'])), want, rtol=1e-6)


def test_the_optimistic_rule_keeps_the_previous_gradient_in_a_checkpoint(tmp_path):
  config = _dirac(train__update_rule='optimistic', train__num_steps=5)
  out = train.train_and_evaluate(config, tmp_path / 'run')
  import ganjax

  run = ganjax.restore(tmp_path / 'run')
  # optax's optimistic GD keeps the last gradient: after the run it is the last step's gradient.
  saved = jax.tree.leaves(run.g_state.opt_state)
  live = jax.tree.leaves(out['g_state'].opt_state)
  assert any(np.ndim(x) == 0 and float(x) != 0.0 for x in saved)
  for x, y in zip(saved, live, strict=True):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_the_dirac_run_logs_theta_psi_and_distance(tmp_path):
  config = _dirac(train__update_rule='simultaneous', train__num_steps=4)
  train.train_and_evaluate(config, tmp_path / 'run')
  import json

  records = [json.loads(line) for line in (tmp_path / 'run' / 'metrics.jsonl').read_text().splitlines()]
  last = records[-1]
  assert {'dirac/theta', 'dirac/psi', 'dirac/distance'} <= set(last)
  assert last['dirac/distance'] == pytest.approx(np.hypot(last['dirac/theta'], last['dirac/psi']), rel=1e-6)


@pytest.mark.parametrize(
  ('overrides', 'message'),
  [
    ({'train__update_rule': 'leapfrog'}, 'train.update_rule must be one of'),
    ({'loss__consensus_weight': 0.5}, 'loss.consensus_weight regularises the simultaneous field'),
    ({'train__update_rule': 'extragradient', 'train__d_update': 'separate'}, "needs train.d_update='joint'"),
    ({'train__update_rule': 'extragradient', 'train__d_update': 'joint', 'train__g_steps': 2}, 'train.g_steps=1'),
  ],
)
def test_bad_game_settings_are_named(overrides, message):
  with pytest.raises(ConfigError, match=message):
    _dirac(**overrides)


def test_dirac_init_on_another_model_is_one_line(tiny_config):
  tiny_config.model.dirac_init = (0.5, 0.5)
  with pytest.raises(ConfigError, match=r"model.dirac_init sets the Dirac-GAN's start"):
    validate(tiny_config)


def test_the_old_update_order_key_names_its_successor(tmp_path):
  proc = run_cli(
    'ganjax.main', '--config=experiments/tiny.py', f'--workdir={tmp_path}', '--config.train.update_order=simultaneous'
  )
  assert proc.returncode == 1
  assert proc.stderr.strip().splitlines() == [
    'ganjax: error: train.update_order is now train.update_rule (same values, and more); rename it: '
    '--config.train.update_rule=...'
  ]
  old = load_experiment(EXPERIMENTS / 'tiny.py')
  with old.ignore_type():
    old.train.update_order = 'simultaneous'
  with pytest.raises(ConfigError, match='train.update_order is now train.update_rule'):
    validate(old)
