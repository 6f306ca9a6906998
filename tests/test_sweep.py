"""Sweeps: K members vmapped in one program, each equal to its own plain run."""

import flax
import jax
import numpy as np
import optax
import pytest

import ganjax
from ganjax import checkpoint, train
from ganjax.errors import CheckpointError, ConfigError
from ganjax.validate import validate
from tests.conftest import run_cli

# vmap batches the members' matmuls, which changes float32 summation order
# only; measured after 20 tiny steps: at most 2.4e-5 on a G bias (Adam's
# normalised steps amplify differences in near-zero gradients), losses equal
# to 6 digits.
ATOL = 1e-4


def _quiet(config, steps=20):
  config.train.num_steps = steps
  config.eval.every_steps = 0
  config.train.sample_every_steps = 10
  return config


def _assert_states_close(a, b):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    if jax.numpy.issubdtype(x.dtype, np.floating):
      np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=0, atol=ATOL)
    else:
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_a_seed_member_equals_the_plain_run_with_that_seed(tiny_config, tmp_path):
  sweep = _quiet(tiny_config.copy_and_resolve_references())
  sweep.sweep.field, sweep.sweep.choices = 'seed', (0, 3)
  out = train.train_and_evaluate(sweep, tmp_path / 'sweep')
  plain = _quiet(tiny_config.copy_and_resolve_references())
  plain.seed = 3
  alone = train.train_and_evaluate(plain, tmp_path / 'plain')
  member = ganjax.restore(tmp_path / 'sweep', member=1)
  assert member.config.seed == 3 and member.member == 1
  _assert_states_close(member.g_state.params, alone['g_state'].params)
  _assert_states_close(member.d_state.params, alone['d_state'].params)
  _assert_states_close(member.g_state.batch_stats, alone['g_state'].batch_stats)
  # The members really differ, and each has its own logs and sample grids.
  other = ganjax.restore(tmp_path / 'sweep', member=0)
  assert not np.allclose(other.g_state.params['Dense_0']['kernel'], member.g_state.params['Dense_0']['kernel'])
  for k in (0, 1):
    assert (tmp_path / 'sweep' / f'member_{k}' / 'samples' / 'step_000020.png').is_file()
    assert (tmp_path / 'sweep' / f'member_{k}' / 'metrics.jsonl').read_text().count('"d_loss"') == 4
  assert out['metrics'][1]['d_loss'] == pytest.approx(alone['metrics']['d_loss'], rel=1e-5)
  with pytest.raises(CheckpointError, match=r'is a sweep of 2 members \(seed = \(0, 3\)\); pick one with member=0..1'):
    ganjax.restore(tmp_path / 'sweep')
  with pytest.raises(CheckpointError, match='not 2'):
    ganjax.restore(tmp_path / 'sweep', member=2)
  proc = run_cli('ganjax.sample', f'--workdir={tmp_path / "sweep"}', '--member=1', f'--out={tmp_path / "g.png"}')
  assert proc.returncode == 0 and '(member 1)' in proc.stdout, proc.stderr
  # A sweep saved before its members kept their real label in D's state restores with the config's.
  ckpt = checkpoint.Checkpointer(tmp_path / 'sweep', sweep)
  ckpt.save(21, out['g_state'], out['d_state'].replace(real_label=flax.core.FrozenDict()), {})
  ckpt.close()
  legacy = ganjax.restore(tmp_path / 'sweep', member=1)
  assert legacy.step == 21 and float(legacy.d_state.real_label) == 1.0
  _assert_states_close(legacy.d_state.params, member.d_state.params)


@pytest.mark.parametrize('mode', ['vmap', 'unroll'])
def test_a_learning_rate_member_equals_the_plain_run_with_that_rate(tiny_config, tmp_path, mode):
  sweep = _quiet(tiny_config.copy_and_resolve_references(), steps=10)
  sweep.sweep.mode = mode
  sweep.checkpoint.enabled = False
  sweep.sweep.field, sweep.sweep.choices = 'opt.g_lr', (1e-3, 2e-4)
  out = train.train_and_evaluate(sweep, tmp_path / 'sweep')
  plain = _quiet(tiny_config.copy_and_resolve_references(), steps=10)
  plain.checkpoint.enabled = False
  alone = train.train_and_evaluate(plain, tmp_path / 'plain')  # g_lr 2e-4, the default
  member = jax.tree.map(lambda x: x[1], out['g_state'].params)
  _assert_states_close(member, alone['g_state'].params)
  fast = jax.tree.map(lambda x: x[0], out['g_state'].params)
  assert not np.allclose(fast['Dense_0']['kernel'], member['Dense_0']['kernel'])


def _assert_leaves_close(a, b, rtol=2e-3, floor=1e-2):
  """Every float leaf within `rtol` of the other, relative to that leaf's own scale, so that small leaves
  (Adam's second moments) count; the scale never drops under `floor` times the tree's largest value,
  for leaves that are float noise (the biases before G's BatchNorm get no gradient: measured up to 7e-6)."""
  leaves = jax.tree_util.tree_leaves_with_path(a)
  other = jax.tree.leaves(b)
  assert len(leaves) == len(other)
  tree_scale = max(float(np.max(np.abs(np.asarray(y)))) for y in other if np.size(y))
  for (path, x), y in zip(leaves, other, strict=True):
    x, y = np.asarray(x), np.asarray(y)
    if np.issubdtype(x.dtype, np.floating):
      scale = max(float(np.max(np.abs(y))), floor * tree_scale)
      np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol * scale, err_msg=jax.tree_util.keystr(path))


def _adam_moments(opt_state):
  adam = [x for x in jax.tree.leaves(opt_state, is_leaf=_is_adam) if _is_adam(x)]
  return [(a.mu, a.nu) for a in adam]


def _is_adam(x):
  return isinstance(x, optax.ScaleByAdamState)


@pytest.mark.parametrize(
  ('field', 'value', 'schedule'), [('opt.d_lr', 5e-4, 'linear'), ('loss.real_label', 0.9, 'constant')]
)
def test_a_d_lr_or_real_label_member_equals_its_plain_run(tiny_config, tmp_path, field, value, schedule):
  def config():
    c = _quiet(tiny_config.copy_and_resolve_references(), steps=10)
    c.checkpoint.enabled = False
    c.opt.schedule = schedule
    return c

  sweep = config()
  section, leaf = field.split('.')
  sweep.sweep.field, sweep.sweep.choices = field, (float(sweep[section][leaf]), value)
  out = train.train_and_evaluate(sweep, tmp_path / 'sweep')
  plain = config()
  plain[section][leaf] = value
  alone = train.train_and_evaluate(plain, tmp_path / 'plain')
  for name in ('g_state', 'd_state'):
    member = jax.tree.map(lambda x: x[1], out[name])
    _assert_leaves_close(member.params, alone[name].params)
    # Adam's first and second moments (a learning-rate sweep wraps Adam in another optimizer state).
    moments, want = _adam_moments(member.opt_state), _adam_moments(alone[name].opt_state)
    for (mu, nu), (want_mu, want_nu) in zip(moments, want, strict=True):
      _assert_leaves_close(mu, want_mu)
      _assert_leaves_close(nu, want_nu)
  # The members' real labels live in D's state (as the rates live in the optimizer state).
  want = (1.0, value) if field == 'loss.real_label' else (1.0, 1.0)
  np.testing.assert_array_equal(np.asarray(out['d_state'].real_label), np.float32(want))
  for metric in ('d_loss', 'g_loss'):
    assert out['metrics'][1][metric] == pytest.approx(alone['metrics'][metric], rel=1e-4)
  assert out['metrics'][0]['d_loss'] != pytest.approx(alone['metrics']['d_loss'], rel=1e-4)


@pytest.mark.parametrize(
  ('field', 'choices', 'message'),
  [
    ('model.latent_dim', (8, 16), 'sweep.field must be one of'),
    ('', (1, 2), 'needs sweep.field'),
    ('seed', (), 'needs sweep.choices'),
    ('seed', (0.5, 1), 'integer values'),
    ('loss.real_label', (0.9, 1.5), r'loss.real_label must be in \(0, 1\]'),
  ],
)
def test_bad_sweeps_are_config_errors(tiny_config, field, choices, message):
  tiny_config.sweep.field, tiny_config.sweep.choices = field, choices
  with pytest.raises(ConfigError, match=message):
    validate(tiny_config)
