import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import choices, losses, objectives, states, train_step
from ganjax.errors import ConfigError
from ganjax.validate import validate

LOG2 = float(np.log(2.0))


def test_bce_at_zero_logits_is_log_2_and_smoothing_shifts_the_target():
  zero = jnp.zeros(4)
  assert losses.d_real(zero) == pytest.approx(LOG2)
  assert losses.d_fake(zero) == pytest.approx(LOG2)
  assert losses.g_loss(zero) == pytest.approx(LOG2)
  # BCE with target 0.9 at logit l: -(0.9 log s(l) + 0.1 log(1 - s(l))).
  logit = jnp.array([2.0])
  p = jax.nn.sigmoid(2.0)
  assert losses.d_real(logit, 'bce', 0.9) == pytest.approx(float(-(0.9 * np.log(p) + 0.1 * np.log(1 - p))), rel=1e-5)


def test_minimax_generator_loss_saturates_where_the_nonsaturating_one_does_not():
  assert losses.g_loss(jnp.zeros(2), 'minimax') == pytest.approx(-LOG2)
  confident_fake = jnp.array([-10.0])  # D is sure the sample is fake
  minimax_grad = jax.grad(lambda x: losses.g_loss(x, 'minimax'))(confident_fake)
  nonsat_grad = jax.grad(lambda x: losses.g_loss(x, 'bce'))(confident_fake)
  assert abs(float(minimax_grad[0])) < 1e-4 < abs(float(nonsat_grad[0]))


def test_hinge_values():
  assert losses.d_real(jnp.array([2.0, 0.5]), 'hinge') == pytest.approx(0.25)
  assert losses.d_fake(jnp.array([-2.0, 0.5]), 'hinge') == pytest.approx(0.75)
  assert losses.g_loss(jnp.array([1.0, 3.0]), 'hinge') == pytest.approx(-2.0)


def test_least_squares_values():
  assert losses.d_real(jnp.array([1.0, 3.0]), 'lsgan') == pytest.approx(1.0)
  assert losses.d_fake(jnp.array([0.0, 2.0]), 'lsgan') == pytest.approx(1.0)
  assert losses.g_loss(jnp.array([1.0, -1.0]), 'lsgan') == pytest.approx(1.0)


def test_wasserstein_values():
  assert losses.d_real(jnp.array([1.0, 3.0]), 'wgan') == pytest.approx(-2.0)
  assert losses.d_fake(jnp.array([1.0, 3.0]), 'wgan') == pytest.approx(2.0)
  assert losses.g_loss(jnp.array([1.0, 3.0]), 'wgan') == pytest.approx(-2.0)


def _critic(x):
  """A smooth nonlinear critic of 2x3 'images', one logit per example (float64 inside enable_x64)."""
  w = jnp.arange(1.0, 7.0).reshape(2, 3) / 4
  return jnp.sum(jnp.sin(x * w) + 0.3 * (x * w) ** 2, axis=(1, 2))


def _fd_grad_norms(fn, x, h=1e-6):
  """Per-example gradient norms of fn by central finite differences."""
  x = np.asarray(x, np.float64)
  grads = np.zeros_like(x)
  for idx in np.ndindex(*x.shape[1:]):
    step = np.zeros_like(x)
    step[(slice(None), *idx)] = h
    grads[(slice(None), *idx)] = (np.asarray(fn(x + step)) - np.asarray(fn(x - step))) / (2 * h)
  return np.sqrt((grads**2).reshape(len(x), -1).sum(axis=1))


def test_gradient_penalty_matches_finite_differences():
  with jax.enable_x64(True):
    real = jax.random.normal(jax.random.key(0), (5, 2, 3), jnp.float64)
    fake = jax.random.normal(jax.random.key(1), (5, 2, 3), jnp.float64)
    key = jax.random.key(2)
    eps = jax.random.uniform(key, (5, 1, 1), jnp.float64)  # the interpolation weights the penalty draws
    x_hat = eps * real + (1 - eps) * fake
    expected = np.mean((_fd_grad_norms(_critic, x_hat) - 1.0) ** 2)
    assert float(losses.gradient_penalty(_critic, real, fake, key)) == pytest.approx(expected, rel=1e-6)


def test_r1_penalty_matches_finite_differences():
  with jax.enable_x64(True):
    real = jax.random.normal(jax.random.key(3), (4, 2, 3), jnp.float64)
    expected = 0.5 * np.mean(_fd_grad_norms(_critic, real) ** 2)
    assert float(losses.r1_penalty(_critic, real)) == pytest.approx(expected, rel=1e-6)


def test_unknown_loss_is_rejected():
  with pytest.raises(ValueError, match='unknown loss'):
    losses.g_loss(jnp.zeros(1), 'wasserstein-ish')


def test_config_knows_exactly_the_implemented_losses(tiny_config):
  assert choices.LOSSES == losses.LOSSES == tuple(losses.TABLE)
  tiny_config.loss.name = 'wgan2'
  with pytest.raises(ConfigError, match='loss.name must be one of'):
    validate(tiny_config)


@pytest.mark.parametrize('name', losses.LOSSES)
def test_the_steps_logged_losses_are_the_loss_on_the_steps_own_logits(tiny_config, name):
  """Recomputes one joint step by hand, with the step's key derivation: real, fake and G logits."""
  tiny_config.loss.name, tiny_config.train.d_update = name, 'joint'
  g_state, d_state = states.create_states(tiny_config, jax.random.key(0))
  cfg = objectives.StepConfig.from_config(tiny_config)
  real = jax.random.uniform(jax.random.key(1), (16, 28, 28, 1), minval=-1, maxval=1)
  rng = jax.random.key(2)
  g_out, d_out, metrics = train_step.train_step(g_state, d_state, {'image': real}, rng, cfg)

  def d(params, x):  # tiny's D: no dropout, noise or BatchNorm, so no random streams or statistics
    return d_state.apply_fn({'params': params}, x, train=True)

  d_rng, g_rng = jax.random.split(rng)
  z_d = objectives.draw_fakes_input(jax.random.split(d_rng, 4)[0], 16, cfg)[0]
  z_g = objectives.draw_fakes_input(jax.random.split(g_rng)[0], 16, cfg)[0]
  fakes_d = states.generate(g_state, z_d, train=True)[0]
  fakes_g = states.generate(g_state, z_g, train=True)[0]
  want = {
    'd_loss_real': losses.d_real(d(d_state.params, real), name),
    'd_loss_fake': losses.d_fake(d(d_state.params, fakes_d), name),
    'g_loss': losses.g_loss(d(d_out.params, fakes_g), name),  # G through the updated, frozen D
  }
  want['d_loss'] = 0.5 * (want['d_loss_real'] + want['d_loss_fake'])
  for key, value in want.items():
    assert float(metrics[key]) == pytest.approx(float(value), rel=1e-5, abs=1e-6), key


@pytest.mark.parametrize('name', losses.LOSSES)
def test_every_loss_trains_through_the_same_step(tiny_config, name):
  tiny_config.loss.name = name
  g_state, d_state = states.create_states(tiny_config, jax.random.key(0))
  step = train_step.make_train_step(tiny_config)
  batch = {'image': jax.random.uniform(jax.random.key(1), (1, 16, 28, 28, 1), minval=-1, maxval=1)}  # (devices, B, ...)
  g0 = jax.tree.map(jnp.copy, g_state.params)
  g_state, d_state = train_step.replicate((g_state, d_state))
  for i in range(3):
    g_state, d_state, metrics = step(g_state, d_state, batch, jax.random.key(i))
  assert all(np.isfinite(v).all() for v in metrics.values())
  assert not all(
    np.array_equal(a, b[0]) for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(g_state.params), strict=True)
  )


def test_register_adds_a_loss_that_the_config_and_the_step_accept(monkeypatch, tiny_config):
  monkeypatch.setattr(losses, 'TABLE', dict(losses.TABLE))
  monkeypatch.setattr(choices, '_ADDED', {})
  tiny_config.loss.name = 'halved_bce'
  with pytest.raises(ConfigError, match='loss.name must be one of'):
    validate(tiny_config)
  halved = losses.Loss(
    d_real=lambda lg, label: 0.5 * losses.bce(lg, label),
    d_fake=lambda lg: 0.5 * losses.bce(lg, 0.0),
    g=lambda lg: 0.5 * losses.g_loss_nonsaturating(lg),
  )
  losses.register('halved_bce', halved)
  validate(tiny_config)
  with pytest.raises(ValueError, match='exists already'):
    losses.register('bce', halved)
  # The step trains with it: from the same states and batch, every logged loss is half the BCE step's.
  g_state, d_state = states.create_states(tiny_config, jax.random.key(0))
  batch = {'image': jax.random.uniform(jax.random.key(1), (16, 28, 28, 1), minval=-1.0, maxval=1.0)}
  metrics = {}
  for name in ('bce', 'halved_bce'):
    tiny_config.loss.name = name
    cfg = objectives.StepConfig.from_config(tiny_config)
    metrics[name] = train_step.train_step(g_state, d_state, batch, jax.random.key(2), cfg)[2]
  for key in ('d_loss_real', 'd_loss_fake', 'g_loss'):
    assert float(metrics['halved_bce'][key]) == pytest.approx(0.5 * float(metrics['bce'][key]), rel=1e-5), key
