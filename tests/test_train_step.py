import dataclasses
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import objectives, states, train_step, validate
from ganjax.errors import ConfigError


def _trees_equal(a, b) -> bool:
  return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def _states(config, seed=0):
  return states.create_states(config, jax.random.key(seed))


def _batch(config, seed=0):
  shape = (config.train.batch_size, *config.data.image_shape)
  return {'image': jax.random.uniform(jax.random.key(100 + seed), shape, minval=-1, maxval=1)}


def _cfg(config, **overrides):
  return dataclasses.replace(objectives.StepConfig.from_config(config), **overrides)


def _on_one_device(batch):
  return jax.tree.map(lambda x: x[None], batch)


@pytest.mark.parametrize('g_norm', ['none', 'batch'])
def test_no_gradient_crosses_between_the_networks(tiny_config, g_norm):
  tiny_config.model.g_norm = g_norm
  g_state, d_state = _states(tiny_config)
  z = jax.random.normal(jax.random.key(1), (8, tiny_config.model.latent_dim))
  rng = jax.random.key(2)
  # G's loss: D's params are held constant.
  grads = jax.grad(lambda g, d: objectives.g_loss_fn(g, d, g_state, d_state, z, rng)[0], argnums=(0, 1))(
    g_state.params, d_state.params
  )
  assert all(np.all(leaf == 0) for leaf in jax.tree.leaves(grads[1]))
  assert any(np.any(leaf != 0) for leaf in jax.tree.leaves(grads[0]))
  # D's loss on fakes: G's params get no gradient.
  grads = jax.grad(lambda d, g: objectives.d_fake_loss_fn(d, g, g_state, d_state, z, rng)[0], argnums=(0, 1))(
    d_state.params, g_state.params
  )
  assert all(np.all(leaf == 0) for leaf in jax.tree.leaves(grads[1]))
  assert any(np.any(leaf != 0) for leaf in jax.tree.leaves(grads[0]))


@pytest.mark.parametrize('d_stats', ['none', 'spectral_norm', 'batch_norm'])
@pytest.mark.parametrize('d_update', ['separate', 'joint'])
def test_g_update_leaves_d_bit_identical_and_d_update_leaves_g(tiny_config, d_update, d_stats):
  # D's statistics (spectral-norm estimates or BatchNorm's) are state too: only D's phase may advance them.
  tiny_config.model.d_spectral_norm = d_stats == 'spectral_norm'
  tiny_config.model.d_norm = 'batch' if d_stats == 'batch_norm' else 'none'
  g_state, d_state = _states(tiny_config)
  batch, rng = _batch(tiny_config), jax.random.key(3)
  cfg = _cfg(tiny_config, d_update=d_update)
  g_out, d_out, _ = train_step.train_step(g_state, d_state, batch, rng, cfg)

  # Recompute the step's two phases one at a time, with the step's own keys.
  d_rng, g_rng = jax.random.split(rng)
  d_after, _ = train_step.d_phase(g_state, d_state, batch, d_rng, cfg)
  g_after, _ = train_step.g_phase(g_state, d_after, batch['image'].shape[0], g_rng, cfg)
  # D ends the step exactly as its own update left it: the G update did not touch it.
  assert _trees_equal(d_out.params, d_after.params)
  assert _trees_equal(d_out.opt_state, d_after.opt_state)
  assert _trees_equal(d_out.batch_stats, d_after.batch_stats)
  if d_stats != 'none':  # ... and D's phase did advance them, so the comparison above can fail
    assert jax.tree.leaves(d_after.batch_stats) and not _trees_equal(d_after.batch_stats, d_state.batch_stats)
  # G's update starts from G's original params: the D updates did not touch G (its BatchNorm statistics neither).
  assert _trees_equal(g_out.params, g_after.params)
  assert _trees_equal(g_out.batch_stats, g_after.batch_stats)
  assert not _trees_equal(g_out.batch_stats, g_state.batch_stats)  # tiny's G has BatchNorm: its phase moved them
  assert not _trees_equal(g_out.params, g_state.params)
  assert not _trees_equal(d_out.params, d_state.params)
  assert int(d_out.step) == (2 if d_update == 'separate' else 1)
  assert int(g_out.step) == 1


def test_separate_makes_two_adam_steps_and_joint_one(tiny_config):
  g_state, d_state = _states(tiny_config)
  batch, rng = _batch(tiny_config), jax.random.key(3)
  _, d_sep, _ = train_step.train_step(g_state, d_state, batch, rng, _cfg(tiny_config, d_update='separate'))
  _, d_joint, _ = train_step.train_step(g_state, d_state, batch, rng, _cfg(tiny_config, d_update='joint'))
  assert not _trees_equal(d_sep.params, d_joint.params)


def test_d_loss_falls_on_a_fixed_batch(tiny_config):
  # G barely moves, so D faces a fixed task: real batch vs the same fakes each step.
  tiny_config.opt.g_lr = 1e-9
  g_state, d_state = _states(tiny_config)
  batch = _batch(tiny_config)
  step = train_step.make_train_step(tiny_config)
  g_state, d_state = train_step.replicate((g_state, d_state))
  losses = []
  for _i in range(30):
    g_state, d_state, metrics = step(g_state, d_state, _on_one_device(batch), jax.random.key(7))  # same key: same fakes
    losses.append(float(metrics['d_loss'][0]))
  assert losses[-1] < losses[0]
  assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves((g_state.params, d_state.params)))


def test_metrics_are_finite_scalars_in_range(tiny_config):
  g_state, d_state = _states(tiny_config)
  g_rep, d_rep = train_step.replicate((g_state, d_state))
  _, _, m = train_step.make_train_step(tiny_config)(
    g_rep, d_rep, _on_one_device(_batch(tiny_config)), jax.random.key(0)
  )
  m = {k: v[0] for k, v in m.items()}  # one device
  expected = {'d_loss', 'd_acc', 'g_loss', 'd_real_prob', 'd_fake_prob', 'g_grad_norm', 'd_grad_norm'}
  assert expected <= set(m)
  for key, value in m.items():
    assert jnp.shape(value) == () and np.isfinite(value), key
  assert 0 <= m['d_acc'] <= 1 and 0 < m['d_real_prob'] < 1 and 0 < m['d_fake_prob'] < 1
  np.testing.assert_allclose(m['d_loss'], 0.5 * (m['d_loss_real'] + m['d_loss_fake']), rtol=1e-6)


def test_batchnorm_statistics_update_in_g_phase_only(tiny_config):
  tiny_config.model.g_norm = 'batch'
  g_state, d_state = _states(tiny_config)
  g_out, _, _ = train_step.train_step(g_state, d_state, _batch(tiny_config), jax.random.key(0), _cfg(tiny_config))
  assert not _trees_equal(g_out.batch_stats, g_state.batch_stats)


def _adam_by_hand(params, grads_per_step, lr, b1, b2, eps):
  """Params after plain Adam steps, one per gradient tree, written out (bias-corrected moments)."""
  m = jax.tree.map(jnp.zeros_like, params)
  v = jax.tree.map(jnp.zeros_like, params)
  for t, grads in enumerate(grads_per_step, start=1):
    m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
    v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
    params = jax.tree.map(
      lambda p, m, v, t=t: p - lr * (m / (1 - b1**t)) / (jnp.sqrt(v / (1 - b2**t)) + eps), params, m, v
    )
  return params


def _d_pieces(config, g_state, d_state, batch, rng):
  """The step's own fakes and D's real and fake losses as functions of D's params."""
  from ganjax import losses

  batch = batch['image']
  d_rng, _ = jax.random.split(rng)
  z_rng, _, _, gp_rng = jax.random.split(d_rng, 4)
  z = jax.random.normal(z_rng, (batch.shape[0], config.model.latent_dim))
  fakes, _ = states.generate(g_state, z, train=True)

  def d(params, x):
    return d_state.apply_fn({'params': params}, x, train=True)

  def real(params):
    return losses.d_real(d(params, batch), 'bce', 1.0)

  def fake(params):
    return losses.d_fake(d(params, fakes), 'bce')

  return d, real, fake, fakes, gp_rng


def test_separate_is_adam_on_real_then_on_fake_and_joint_is_adam_on_the_mean(tiny_config):
  o = tiny_config.opt
  g_state, d_state = _states(tiny_config)
  batch, rng = _batch(tiny_config), jax.random.key(3)
  _, real, fake, _, _ = _d_pieces(tiny_config, g_state, d_state, batch, rng)
  p0 = d_state.params
  # separate: one Adam step on the real loss, then one on the fake loss at the updated params.
  p1 = _adam_by_hand(p0, [jax.grad(real)(p0)], o.d_lr, o.b1, o.b2, o.eps)
  g_real, g_fake = jax.grad(real)(p0), jax.grad(fake)(p1)
  expected_separate = _adam_by_hand(p0, [g_real, g_fake], o.d_lr, o.b1, o.b2, o.eps)
  _, d_sep, _ = train_step.train_step(g_state, d_state, batch, rng, _cfg(tiny_config, d_update='separate'))
  # joint: one Adam step on the mean of both losses.
  g_joint = jax.grad(lambda p: 0.5 * (real(p) + fake(p)))(p0)
  expected_joint = _adam_by_hand(p0, [g_joint], o.d_lr, o.b1, o.b2, o.eps)
  _, d_joint, _ = train_step.train_step(g_state, d_state, batch, rng, _cfg(tiny_config, d_update='joint'))
  for got, want in ((d_sep.params, expected_separate), (d_joint.params, expected_joint)):
    for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
      np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize('penalty', ['r1', 'gp'])
def test_penalised_d_gradient_is_loss_gradient_plus_weight_times_penalty_gradient(tiny_config, penalty):
  from ganjax import losses

  tiny_config.model.d_minibatch_std = False  # the penalties see D one image at a time
  weight = 3.0
  g_state, d_state = _states(tiny_config)
  batch, rng = _batch(tiny_config), jax.random.key(5)
  d, real, fake, fakes, gp_rng = _d_pieces(tiny_config, g_state, d_state, batch, rng)
  p0, images = d_state.params, batch['image']
  if penalty == 'r1':
    pen = lambda p: losses.r1_penalty(lambda x: d(p, x), images)  # noqa: E731
  else:
    pen = lambda p: losses.gradient_penalty(lambda x: d(p, x), images, fakes, gp_rng)  # noqa: E731
  # Each piece differentiated on its own, then combined as the step's joint loss 0.5 (real + w pen + fake).
  g_loss = jax.grad(lambda p: 0.5 * (real(p) + fake(p)))(p0)
  g_pen = jax.grad(pen)(p0)
  expected = jax.tree.map(lambda a, b: a + 0.5 * weight * b, g_loss, g_pen)
  kwargs = {'r1_weight': weight} if penalty == 'r1' else {'gp_weight': weight}
  _, d_out, metrics = train_step.train_step(g_state, d_state, batch, rng, _cfg(tiny_config, d_update='joint', **kwargs))
  o = tiny_config.opt
  for x, y in zip(
    jax.tree.leaves(d_out.params),
    jax.tree.leaves(_adam_by_hand(p0, [expected], o.d_lr, o.b1, o.b2, o.eps)),
    strict=True,
  ):
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7)
  # Adam's first step is close to a sign step, so the gradient's size is checked through its norm.
  norm = np.sqrt(sum(np.sum(np.square(leaf)) for leaf in jax.tree.leaves(expected)))
  np.testing.assert_allclose(metrics['d_grad_norm'], norm, rtol=1e-5)
  assert float(metrics['d_penalty']) == pytest.approx(weight * float(pen(p0)), rel=1e-5)


def test_half_precision_computes_the_same_function_in_bfloat16_with_float32_states():
  from ganjax.config import load_experiment

  config = load_experiment(pathlib.Path(__file__).resolve().parent.parent / 'experiments' / 'mnist_gan.py')
  full = states.create_states(config, jax.random.key(0))
  config.train.half_precision = True
  half = states.create_states(config, jax.random.key(0))
  # Params, statistics and optimizer states stay float32.
  floats = [x for x in jax.tree.leaves(half) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)]
  assert {x.dtype for x in floats} == {jnp.dtype('float32')}
  z = jax.random.normal(jax.random.key(1), (16, config.model.latent_dim))
  labels = jnp.arange(16) % 10
  images = {}
  for name, (g_state, _) in (('full', full), ('half', half)):
    images[name], stats = states.generate(g_state, z, params=g_state.params, train=True, labels=labels)
    assert images[name].dtype == jnp.float32 and all(s.dtype == jnp.float32 for s in jax.tree.leaves(stats))
  np.testing.assert_allclose(images['half'], images['full'], atol=0.05)  # bfloat16 keeps 8 bits of mantissa
  assert not np.array_equal(images['half'], images['full'])  # it did compute in bfloat16
  batch = {'image': jax.random.uniform(jax.random.key(3), (16, 28, 28, 1), minval=-1, maxval=1)}
  cfg = objectives.StepConfig.from_config(config)
  metrics = {}
  for name, (g_state, d_state) in (('full', full), ('half', half)):
    g_out, d_out, metrics[name] = train_step.train_step(g_state, d_state, batch, jax.random.key(4), cfg)
    leaves = jax.tree.leaves((g_out.params, g_out.opt_state, d_out.params, d_out.opt_state))
    assert {x.dtype for x in leaves if jnp.issubdtype(x.dtype, jnp.floating)} == {jnp.dtype('float32')}
  for key in ('d_loss', 'g_loss', 'info_loss'):
    np.testing.assert_allclose(metrics['half'][key], metrics['full'][key], rtol=0.03)


def _rates(tx, n):
  """The learning rate of each of `n` updates, read off Adam's steps on a constant unit gradient
  (the bias-corrected moments are then exactly 1, so each update is the rate itself)."""
  params, grads = {'w': jnp.zeros(())}, {'w': jnp.ones(())}
  state, out = tx.init(params), []
  for _ in range(n):
    updates, state = tx.update(grads, state, params)
    out.append(-float(updates['w']))
  return out


@pytest.mark.parametrize(
  ('decay_from', 'want_g', 'want_d'),
  [
    (
      0.0,
      [1e-3, 7.5e-4, 5e-4, 2.5e-4, 0.0, 0.0],
      [1e-3, 8.75e-4, 7.5e-4, 6.25e-4, 5e-4, 3.75e-4, 2.5e-4, 1.25e-4, 0.0],
    ),
    # Half of the updates at the full rate, then the decay to 0 over the other half.
    (0.5, [1e-3, 1e-3, 1e-3, 5e-4, 0.0, 0.0], [1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 7.5e-4, 5e-4, 2.5e-4, 0.0]),
  ],
)
def test_linear_schedule_reaches_zero_at_num_steps_for_both_players(tiny_config, decay_from, want_g, want_d):
  tiny_config.opt.schedule, tiny_config.train.num_steps = 'linear', 4
  tiny_config.opt.decay_from = decay_from
  tiny_config.opt.g_lr = tiny_config.opt.d_lr = 1e-3
  tiny_config.opt.eps = 0.0
  tiny_config.train.d_update = 'separate'  # two D updates per step: D's decay runs over 8 updates
  g_state, d_state = _states(tiny_config)
  assert _rates(g_state.tx, 6) == pytest.approx(want_g, rel=1e-4, abs=1e-12)
  assert _rates(d_state.tx, 9) == pytest.approx(want_d, rel=1e-4, abs=1e-12)


@pytest.mark.parametrize(
  ('schedule', 'decay_from', 'message'),
  [('constant', 0.5, "needs opt.schedule='linear'"), ('linear', 1.0, r'opt.decay_from must be in \[0, 1\)')],
)
def test_a_decay_without_a_schedule_or_past_the_end_is_refused(tiny_config, schedule, decay_from, message):
  tiny_config.opt.schedule, tiny_config.opt.decay_from = schedule, decay_from
  with pytest.raises(ConfigError, match=message):
    validate.validate(tiny_config)
