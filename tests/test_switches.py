"""Training switches beyond the tutorial, each through the same train step: n_critic, simultaneous
updates, G's EMA, spectral norm, penalties, the DCGAN architectures."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import objectives, samplers, states, train, train_step
from ganjax.errors import ConfigError
from ganjax.validate import validate


def _trees_equal(a, b) -> bool:
  return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def _batch(config, *lead, seed=0):
  shape = (*lead, config.train.batch_size, *config.data.image_shape)
  return {'image': jax.random.uniform(jax.random.key(100 + seed), shape, minval=-1, maxval=1)}


def _cfg(config, **overrides):
  return dataclasses.replace(objectives.StepConfig.from_config(config), **overrides)


def test_n_critic_makes_that_many_d_updates_on_their_own_batches(tiny_config):
  g_state, d_state = states.create_states(tiny_config, jax.random.key(0))
  batches = _batch(tiny_config, 3)
  rng = jax.random.key(1)
  cfg = _cfg(tiny_config, n_critic=3, d_update='joint')
  _, d_out, metrics = train_step.train_step(g_state, d_state, batches, rng, cfg)
  assert int(d_out.step) == 3
  # The same as three single-critic D phases on the three batches, in order.
  d_rng, _ = jax.random.split(rng)
  d_manual = d_state
  for i in range(3):
    one = {'image': batches['image'][i]}
    d_manual, _ = train_step.d_phase(g_state, d_manual, one, jax.random.fold_in(d_rng, i), cfg)
  assert _trees_equal(d_out.params, d_manual.params)
  assert np.isfinite(float(metrics['d_loss']))
  # The sampler hands each step n_critic consecutive batches of the epoch's order.
  images = np.arange(24, dtype=np.uint8).reshape(24, 1, 1, 1)
  sampler = samplers.DeviceSampler(images, 4, jax.random.key(0), chunks=3)
  assert sampler.steps_per_epoch == 2 and sampler.indices(1).shape == (3, 4)
  assert sorted(np.concatenate([sampler.indices(0).ravel(), sampler.indices(1).ravel()])) == list(range(24))


def test_g_steps_makes_that_many_g_updates_on_fresh_latents(tiny_config):
  g_state, d_state = states.create_states(tiny_config, jax.random.key(0))
  batch, rng = _batch(tiny_config), jax.random.key(5)
  cfg = _cfg(tiny_config, g_steps=2)
  g_out, d_out, metrics = train_step.train_step(g_state, d_state, batch, rng, cfg)
  g_one, d_one, _ = train_step.train_step(g_state, d_state, batch, rng, _cfg(tiny_config))
  assert int(g_out.step) == 2 and int(d_out.step) == int(d_one.step)
  assert _trees_equal(d_out.params, d_one.params)  # D's part is untouched
  # The same as the one-update step followed by a G phase through the same updated D, on the next key.
  _, g_rng = jax.random.split(rng)
  g_manual, _ = train_step.g_phase(g_one, d_one, batch['image'].shape[0], jax.random.fold_in(g_rng, 1), cfg)
  assert _trees_equal(g_out.params, g_manual.params)
  assert not _trees_equal(g_out.params, g_one.params)
  assert np.isfinite(float(metrics['g_loss']))


@pytest.mark.parametrize('update_rule', ['alternating', 'simultaneous'])
def test_g_reuses_fakes_updates_g_on_d_s_fake_batch(tiny_config, update_rule):
  g_state, d_state = states.create_states(tiny_config, jax.random.key(0))
  batch, rng = _batch(tiny_config), jax.random.key(6)
  cfg = _cfg(tiny_config, update_rule=update_rule)
  reuse = dataclasses.replace(cfg, g_reuses_fakes=True)
  g_out, d_out, metrics = train_step.train_step(g_state, d_state, batch, rng, reuse)
  g_fresh, d_fresh, _ = train_step.train_step(g_state, d_state, batch, rng, cfg)
  close = functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6)
  jax.tree.map(close, d_out.params, d_fresh.params)  # D's update is the tutorial's either way
  # G's: the plain G loss, through the D it sees, on the latents of D's fake batch instead of fresh ones.
  d_rng, g_rng = jax.random.split(rng)
  z, _ = objectives.d_fakes_input(d_rng, batch['image'].shape[0], cfg)
  d_seen = d_fresh if update_rule == 'alternating' else d_state
  grads, (_, stats, _, _) = jax.grad(objectives.g_loss_fn, has_aux=True)(
    g_state.params, d_seen.params, g_state, d_seen, z, jax.random.split(g_rng)[1]
  )
  expected = g_state.apply_gradients(grads=grads, batch_stats=stats)
  jax.tree.map(close, g_out.params, expected.params)
  jax.tree.map(close, g_out.batch_stats, expected.batch_stats)  # G's BatchNorm statistics moved once
  assert not _trees_equal(g_out.params, g_fresh.params)
  assert np.isfinite(float(metrics['g_loss']))


def _step_flops(config, cfg) -> float:
  g_state, d_state = states.create_states(config, jax.random.key(0))
  step = jax.jit(lambda g, d, b, r: train_step.train_step(g, d, b, r, cfg))
  cost = step.lower(g_state, d_state, _batch(config), jax.random.key(1)).compile().cost_analysis()
  return (cost[0] if isinstance(cost, list) else cost)['flops']


def test_g_reuses_fakes_saves_one_forward_pass_of_g(tiny_config):
  tiny_config.model.g_features = (256, 512)  # G's share of the step's work large enough to tell apart
  g_state, _ = states.create_states(tiny_config, jax.random.key(0))
  z = jnp.zeros((tiny_config.train.batch_size, tiny_config.model.latent_dim))
  cost = jax.jit(lambda g, z: states.generate(g, z, train=True)).lower(g_state, z).compile().cost_analysis()
  g_forward = (cost[0] if isinstance(cost, list) else cost)['flops']
  cfg = _cfg(tiny_config)
  saved = _step_flops(tiny_config, cfg) - _step_flops(tiny_config, dataclasses.replace(cfg, g_reuses_fakes=True))
  assert saved == pytest.approx(g_forward, rel=0.1)


@pytest.mark.parametrize('g_steps', [1, 2])
def test_g_steps_stretch_g_s_decay_over_all_its_updates(tiny_config, g_steps):
  tiny_config.opt.schedule, tiny_config.train.num_steps, tiny_config.train.g_steps = 'linear', 1, g_steps
  g, _ = states.create_states(tiny_config, jax.random.key(0))
  grads = jax.tree.map(jnp.ones_like, g.params)
  once = g.apply_gradients(grads=grads, batch_stats=g.batch_stats)
  twice = once.apply_gradients(grads=grads, batch_stats=g.batch_stats)
  # One step of one G update: the rate is 0 at G's second update; with two G updates a step, half of it.
  assert _trees_equal(twice.params, once.params) == (g_steps == 1)


def test_simultaneous_g_update_sees_the_d_from_before_the_step(tiny_config):
  g_state, d_state = states.create_states(tiny_config, jax.random.key(0))
  batch, rng = _batch(tiny_config), jax.random.key(2)
  cfg = _cfg(tiny_config)
  g_sim, d_sim, _ = train_step.train_step(g_state, d_state, batch, rng, _cfg(tiny_config, update_rule='simultaneous'))
  g_alt, d_alt, _ = train_step.train_step(g_state, d_state, batch, rng, cfg)
  _, g_rng = jax.random.split(rng)
  g_expected, _ = train_step.g_phase(g_state, d_state, batch['image'].shape[0], g_rng, cfg)
  assert _trees_equal(g_sim.params, g_expected.params)
  assert not _trees_equal(g_sim.params, g_alt.params)
  assert _trees_equal(d_sim.params, d_alt.params)  # D's update is the same either way


def test_g_ema_tracks_the_params_and_serves_samples(tiny_config):
  tiny_config.train.g_ema_decay = 0.9
  g_state, d_state = states.create_states(tiny_config, jax.random.key(0))
  assert _trees_equal(g_state.ema_params, g_state.params)
  g_out, _, _ = train_step.train_step(g_state, d_state, _batch(tiny_config), jax.random.key(3), _cfg(tiny_config))
  expected = jax.tree.map(lambda e, p: 0.9 * e + 0.1 * p, g_state.params, g_out.params)
  for x, y in zip(jax.tree.leaves(g_out.ema_params), jax.tree.leaves(expected), strict=True):
    np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
  z = jax.random.normal(jax.random.key(4), (4, tiny_config.model.latent_dim))
  with_ema, _ = states.generate(g_out, z)
  with_params, _ = states.generate(g_out, z, params=g_out.params)
  # Samples use the EMA's own BatchNorm statistics, advanced by a training-mode pass of the EMA weights.
  assert g_out.batch_stats and not _trees_equal(g_out.ema_batch_stats, g_out.batch_stats)
  explicit_ema, _ = states.generate(g_out.replace(batch_stats=g_out.ema_batch_stats), z, params=g_out.ema_params)
  np.testing.assert_array_equal(with_ema, explicit_ema)
  assert not np.allclose(with_ema, with_params)


def test_spectral_norm_estimates_the_top_singular_value_and_only_d_updates_it(tiny_config):
  tiny_config.model.d_spectral_norm = True
  g_state, d_state = states.create_states(tiny_config, jax.random.key(0))
  step = jax.jit(lambda g, d, b, r: train_step.train_step(g, d, b, r, _cfg(tiny_config)))
  for i in range(30):
    g_state, d_state, _ = step(g_state, d_state, _batch(tiny_config, seed=i), jax.random.key(i))
  kernel = np.asarray(d_state.params['Conv_1']['kernel'])
  true_sigma = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
  sigma = float(d_state.batch_stats['SpectralNorm_1']['Conv_1/kernel/sigma'])
  assert sigma == pytest.approx(true_sigma, rel=0.05)  # one power iteration per D pass
  # Only D's own passes advance the estimates: a whole step leaves them as its D phase did (the G
  # phase reads D without writing them), and that D phase did move them.
  batch, rng = _batch(tiny_config, seed=99), jax.random.key(99)
  _, d_out, _ = train_step.train_step(g_state, d_state, batch, rng, _cfg(tiny_config))
  d_after, _ = train_step.d_phase(g_state, d_state, batch, jax.random.split(rng)[0], _cfg(tiny_config))
  for a, b in zip(*(jax.tree.leaves(x.batch_stats) for x in (d_out, d_after)), strict=True):
    np.testing.assert_array_equal(a, b)
  assert any(
    not np.array_equal(a, b) for a, b in zip(*(jax.tree.leaves(x.batch_stats) for x in (d_after, d_state)), strict=True)
  )


@pytest.mark.parametrize(
  ('shape', 'g_features', 'd_features'), [((28, 28, 1), (64, 32), (16, 32)), ((32, 32, 3), (64, 32, 16), (16, 32, 64))]
)
def test_dcgan_trains_on_28px_grey_and_32px_colour(tiny_config, shape, g_features, d_features):
  tiny_config.data.image_shape = shape
  tiny_config.model.g_arch, tiny_config.model.d_arch = 'dcgan', 'dcgan'
  tiny_config.model.g_features, tiny_config.model.d_features = g_features, d_features
  validate(tiny_config)
  g_state, d_state = states.create_states(tiny_config, jax.random.key(0))
  images, _ = states.generate(g_state, jnp.zeros((2, tiny_config.model.latent_dim)))
  assert images.shape == (2, *shape)
  step = jax.jit(train_step.train_step, static_argnums=4)
  g_out, d_out, metrics = step(g_state, d_state, _batch(tiny_config), jax.random.key(1), _cfg(tiny_config))
  assert all(np.isfinite(float(v)) for v in metrics.values())
  assert not _trees_equal(g_out.batch_stats, g_state.batch_stats)


def test_wgan_gp_runs_end_to_end_with_its_penalty_logged(tiny_config, tmp_path):
  tiny_config.loss.name, tiny_config.loss.gp_weight = 'wgan', 10.0
  tiny_config.train.d_update, tiny_config.train.n_critic = 'joint', 2
  tiny_config.train.g_ema_decay = 0.99
  tiny_config.model.d_minibatch_std = False
  tiny_config.checkpoint.enabled = False
  out = train.train_and_evaluate(tiny_config, tmp_path / 'run')
  assert out['metrics']['d_penalty'] > 0
  assert int(out['d_state'].step) == 2 * tiny_config.train.num_steps


@pytest.mark.parametrize(
  ('field', 'value', 'message'),
  [
    ('loss.gp_weight', 10.0, "needs train.d_update='joint'"),
    ('train.n_critic', 0, 'train.n_critic must be >= 1'),
    ('train.g_steps', 0, 'train.g_steps must be >= 1'),
    ('train.update_rule', 'random', 'train.update_rule must be one of'),
    ('train.g_ema_decay', 1.0, r'train.g_ema_decay must be in \[0, 1\)'),
    ('model.g_arch', 'dcgan', "model.g_arch='dcgan' needs"),
  ],
)
def test_bad_switches_are_config_errors(tiny_config, field, value, message):
  section, key = field.split('.')
  tiny_config[section][key] = value
  tiny_config.model.g_features = (8, 16, 32)  # three resolutions: too many for DCGAN at 28x28 (7 -> 14 -> 28)
  with pytest.raises(ConfigError, match=message):
    validate(tiny_config)


@pytest.mark.parametrize(
  ('overrides', 'message'),
  [
    ({'train.n_critic': 2}, 'train.g_reuses_fakes needs one fake batch and one G update a step'),
    ({'train.g_steps': 2}, 'train.g_reuses_fakes needs one fake batch and one G update a step'),
    (
      {'train.update_rule': 'extragradient', 'train.d_update': 'joint'},
      'train.update_rule=extragradient draws no fake batch of its own for G',
    ),
  ],
)
def test_g_reuses_fakes_refuses_steps_without_one_fake_batch_for_one_g_update(tiny_config, overrides, message):
  tiny_config.train.g_reuses_fakes = True
  validate(tiny_config)  # the tutorial's step takes it
  for field, value in overrides.items():
    section, key = field.split('.')
    tiny_config[section][key] = value
  with pytest.raises(ConfigError, match=message):
    validate(tiny_config)
