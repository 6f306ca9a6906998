"""InfoGAN's several codes (ganjax.infogan, `model.latent_code_base`) and InfoGAN with PacGAN's packs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import infogan, losses, objectives, states, train_step
from ganjax.config import load_experiment
from ganjax.errors import ConfigError
from ganjax.validate import validate
from tests.conftest import EXPERIMENTS


def test_codes_are_the_category_s_digits_and_q_s_softmaxes_make_one_distribution():
  cats = jnp.arange(1000)
  np.testing.assert_array_equal(
    infogan.code_digits(cats, 1000, 10), np.stack([cats // 100, cats // 10 % 10, cats % 10], 1)
  )
  np.testing.assert_array_equal(infogan.code_digits(jnp.array([5, 6]), 8, 2), [[1, 0, 1], [1, 1, 0]])
  hots = infogan.code_one_hots(jnp.array([407]), 1000, 10)
  assert hots.shape == (1, 30) and set(np.flatnonzero(hots[0])) == {4, 10 + 0, 20 + 7}
  # Two pack members' guesses, three 10-way codes each: log q(c) is the sum of the codes' log-softmaxes.
  q = jax.random.normal(jax.random.key(0), (3, 2 * 30)) * 3
  logp = infogan.category_log_probs(q, 1000, 10, pack=2)
  assert logp.shape == (3, 2000)
  np.testing.assert_allclose(jax.nn.logsumexp(logp.reshape(3, 2, 1000), axis=-1), 0.0, atol=1e-5)
  per_code = jax.nn.log_softmax(q.reshape(3, 2, 3, 10), axis=-1)
  for row, member, c in ((0, 0, 407), (1, 1, 999), (2, 1, 30)):
    d = [c // 100, c // 10 % 10, c % 10]
    want = sum(per_code[row, member, i, d[i]] for i in range(3))
    np.testing.assert_allclose(logp[row, member * 1000 + c], want, rtol=1e-5)


def test_g_sees_each_code_and_the_info_term_is_the_sum_of_the_codes_cross_entropies(tiny_config):
  tiny_config.model.latent_categories, tiny_config.model.latent_code_base = 8, 2
  tiny_config.loss.info_weight = 0.5
  validate(tiny_config)
  g_state, d_state = states.create_states(tiny_config, jax.random.key(0))
  first = jax.tree.leaves(g_state.params['Dense_0'])
  assert any(p.shape[0] == tiny_config.model.latent_dim + 3 * 2 for p in first)  # z and three binary one-hots
  assert d_state.params['Q']['kernel'].shape[-1] == 3 * 2  # one softmax per code, not one over 8
  z = jnp.broadcast_to(jax.random.normal(jax.random.key(1), (1, tiny_config.model.latent_dim)), (8, 8))
  images, _ = states.generate(g_state, z, params=g_state.params, train=False, labels=jnp.arange(8))
  assert len({np.asarray(i).tobytes() for i in images}) == 8  # each category its own image
  cats = jnp.array([0, 1, 2, 3, 4, 5, 6, 7, 7, 0, 3, 5, 1, 2, 6, 4])
  zs = jax.random.normal(jax.random.key(2), (16, tiny_config.model.latent_dim))
  rng = jax.random.key(3)
  loss, (_, _, gan_loss, ce) = objectives.g_loss_fn(
    g_state.params, d_state.params, g_state, d_state, zs, rng, labels=cats, info_weight=0.5
  )
  fakes, _ = states.generate(g_state, zs, params=g_state.params, train=True, labels=cats)
  _, _, q = objectives.discriminate(d_state, d_state.params, fakes, rng, labels=cats, info=True)
  raw = q.reshape(16, 8)  # log-probabilities: rebuild each code's cross-entropy from their marginals
  digits = infogan.code_digits(cats, 8, 2)
  want = 0.0
  for i in range(3):
    marginal = jax.nn.logsumexp(
      jnp.stack([raw[:, infogan.code_digits(jnp.arange(8), 8, 2)[:, i] == v] for v in (0, 1)], 1), axis=-1
    )
    want += -jnp.mean(marginal[jnp.arange(16), digits[:, i]])
  np.testing.assert_allclose(ce, want, rtol=1e-5)
  np.testing.assert_allclose(loss, gan_loss + 0.5 * ce, rtol=1e-6)


def test_a_packed_d_guesses_each_member_s_category_and_trains():
  config = load_experiment(EXPERIMENTS / 'stacked_mnist_pac.py')
  config.data.stacked_size = 256
  config.model.g_features, config.model.d_features = (16, 8), (8, 16)
  config.model.latent_categories, config.model.latent_code_base = 1000, 10
  config.loss.info_weight = 0.2
  config.train.batch_size = 8
  validate(config)  # InfoGAN with packs is no longer refused
  g_state, d_state = states.create_states(config, jax.random.key(0))
  assert d_state.params['inner']['Q']['kernel'].shape[-1] == 2 * 30  # both members' three codes
  cats = jnp.array([7, 993, 420, 1, 55, 555, 0, 999])
  z = jax.random.normal(jax.random.key(1), (8, config.model.latent_dim))
  fakes, _ = states.generate(g_state, z, params=g_state.params, train=True, labels=cats)
  _, _, q = objectives.discriminate(d_state, d_state.params, fakes, jax.random.key(2), labels=cats, info=True)
  assert q.shape == (4, 2 * 1000)
  # Member j of pack i is row 2i + j: its guesses are block j of the pack's row.
  want = -np.mean([q[i // 2, (i % 2) * 1000 + int(c)] for i, c in enumerate(cats)])
  np.testing.assert_allclose(losses.info_loss(q, cats), want, rtol=1e-5)
  batch = {'image': jax.random.uniform(jax.random.key(3), (1, 8, 28, 28, 3), minval=-1, maxval=1)}
  step = train_step.make_train_step(config)
  g_rep, d_rep = train_step.replicate((g_state, d_state))
  g_rep, d_rep, metrics = step(g_rep, d_rep, batch, jax.random.key(4))
  assert np.isfinite(float(metrics['info_loss'][0]))
  assert not np.array_equal(d_rep.params['inner']['Q']['kernel'][0], d_state.params['inner']['Q']['kernel'])


@pytest.mark.parametrize(
  ('categories', 'base', 'g_arch', 'message'),
  [
    (1000, 1, 'dcgan', 'model.latent_code_base must be 0 .one code. or >= 2, got 1'),
    (1000, 3, 'dcgan', 'model.latent_categories=1000 must be a power of model.latent_code_base=3'),
    (0, 10, 'dcgan', 'model.latent_categories=0 must be a power of model.latent_code_base=10'),
    (100, 10, 'resnet', "model.latent_code_base needs g_arch 'mlp' or 'dcgan', got 'resnet'"),
  ],
)
def test_codes_refuse_what_they_cannot_read_in_one_line(tiny_config, categories, base, g_arch, message):
  tiny_config.model.latent_categories, tiny_config.model.latent_code_base = categories, base
  tiny_config.model.g_arch = g_arch
  with pytest.raises(ConfigError, match=message):
    validate(tiny_config)
