"""Class-conditional GAN: labels through the sampler, the step, the grids and `ganjax.sample`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

import ganjax
from ganjax import config as config_lib
from ganjax import objectives, samplers, states, train, train_step
from ganjax.errors import ConfigError
from ganjax.validate import validate
from tests.conftest import run_cli


def test_the_sampler_hands_each_image_its_own_label():
  images = np.arange(12, dtype=np.uint8).reshape(12, 1, 1, 1)
  labels = np.arange(12) % 3
  sampler = samplers.DeviceSampler(images, 4, jax.random.key(0), labels=labels)
  batch = sampler.batch(1)
  got_images, got_labels = batch['image'], batch['label']
  idx = sampler.indices(1)
  np.testing.assert_array_equal(np.asarray(got_labels)[0], labels[idx])
  np.testing.assert_array_equal(np.rint((np.asarray(got_images)[0, :, 0, 0, 0] + 1) * 127.5), images[idx, 0, 0, 0])


def test_labels_steer_g_and_d_learns_its_class_embedding(tiny_config):
  tiny_config.model.num_classes = 10
  g_state, d_state = states.create_states(tiny_config, jax.random.key(0))
  cfg = objectives.StepConfig.from_config(tiny_config)
  assert cfg.num_classes == 10
  z = jnp.ones((2, tiny_config.model.latent_dim))
  images, _ = states.generate(g_state, z, labels=jnp.array([3, 7]))
  assert not np.allclose(images[0], images[1])  # same z, different class
  batch = jax.random.uniform(jax.random.key(1), (16, 28, 28, 1), minval=-1, maxval=1)
  labels = jnp.arange(16) % 10
  _, d_out, metrics = train_step.train_step(g_state, d_state, {'image': batch, 'label': labels}, jax.random.key(2), cfg)
  assert not np.allclose(d_out.params['Embed_0']['embedding'], d_state.params['Embed_0']['embedding'])
  assert np.isfinite(float(metrics['d_loss']))


def test_conditional_run_draws_one_row_per_class_and_samples_chosen_classes(tiny_config, tmp_path):
  tiny_config.model.num_classes = 10
  tiny_config.eval.every_steps = 0
  train.train_and_evaluate(tiny_config, tmp_path / 'run')
  grid = np.asarray(Image.open(tmp_path / 'run' / 'samples' / 'step_000020.png'))
  assert grid.shape == (10 * 30 + 2, 10 * 30 + 2)  # 10 rows (classes) of 10 digits, 28 px + 2 px padding
  run = ganjax.restore(tmp_path / 'run')
  sevens = ganjax.sample(run, 5, labels=7)
  mixed = ganjax.sample(run, 5, labels=np.array([7, 0, 1, 2, 3]))
  np.testing.assert_array_equal(sevens[0], mixed[0])  # same seed, same latent, same class
  assert not np.array_equal(sevens[1], mixed[1])
  assert ganjax.class_grid(run, per_class=3).shape == (30, 28, 28, 1)
  with pytest.raises(ValueError, match=r'labels must be in \[0, 10\)'):
    ganjax.sample(run, 2, labels=10)
  proc = run_cli('ganjax.sample', f'--workdir={tmp_path / "run"}', '--by_class=4', f'--out={tmp_path / "c.png"}')
  assert proc.returncode == 0, proc.stderr
  assert np.asarray(Image.open(tmp_path / 'c.png')).shape == (10 * 30 + 2, 4 * 30 + 2)


def test_unconditional_runs_refuse_labels_and_toy_data_refuses_classes(tiny_config, tmp_path):
  tiny_config.train.num_steps = 2
  tiny_config.eval.every_steps = 0
  train.train_and_evaluate(tiny_config, tmp_path / 'plain')
  with pytest.raises(ValueError, match='not conditional'):
    ganjax.sample(ganjax.restore(tmp_path / 'plain'), 2, labels=1)
  toy = config_lib.load_experiment(config_lib.pathlib.Path(__file__).parent.parent / 'experiments' / 'toy_ring8.py')
  toy.model.num_classes = 8
  with pytest.raises(ConfigError, match='needs labelled images and a conv D'):
    validate(toy)


def test_latent_categories_condition_g_alone_and_need_no_labels(tiny_config, tmp_path):
  tiny_config.model.latent_categories = 4
  tiny_config.eval.every_steps = 0
  g_state, d_state = states.create_states(tiny_config, jax.random.key(0))
  assert 'Embed_0' in g_state.params and 'Embed_0' not in d_state.params  # D never sees the category
  cfg = objectives.StepConfig.from_config(tiny_config)
  batch = {'image': jax.random.uniform(jax.random.key(1), (16, 28, 28, 1), minval=-1, maxval=1)}  # no labels
  g_out, _, metrics = train_step.train_step(g_state, d_state, batch, jax.random.key(2), cfg)
  # G's category embedding learns from D's verdicts on the categories drawn for the fakes.
  assert not np.allclose(g_out.params['Embed_0']['embedding'], g_state.params['Embed_0']['embedding'])
  assert np.isfinite(float(metrics['g_loss']))
  train.train_and_evaluate(tiny_config, tmp_path / 'run')
  grid = np.asarray(Image.open(tmp_path / 'run' / 'samples' / 'step_000020.png'))
  assert grid.shape == (4 * 30 + 2, 10 * 30 + 2)  # one row per category
  run = ganjax.restore(tmp_path / 'run')
  assert ganjax.class_grid(run, per_class=2).shape == (8, 28, 28, 1)
  with pytest.raises(ValueError, match=r'labels must be in \[0, 4\)'):
    ganjax.sample(run, 2, labels=4)


def test_latent_categories_and_classes_are_exclusive(tiny_config):
  tiny_config.model.latent_categories = 4
  tiny_config.model.num_classes = 10
  with pytest.raises(ConfigError, match='model.latent_categories and model.num_classes both condition G'):
    validate(tiny_config)


def test_infogan_adds_the_q_cross_entropy_to_both_players(tiny_config):
  tiny_config.model.latent_categories = 4
  tiny_config.loss.info_weight = 0.5
  validate(tiny_config)
  g_state, d_state = states.create_states(tiny_config, jax.random.key(0))
  assert 'Q' in d_state.params  # the Q head shares D's body
  z = jax.random.normal(jax.random.key(1), (8, tiny_config.model.latent_dim))
  cats = jnp.arange(8) % 4
  rng = jax.random.key(2)
  images, _ = states.generate(g_state, z, params=g_state.params, train=True, labels=cats)
  _, variables = d_state.apply_fn(
    {'params': d_state.params},
    images,
    train=True,
    labels=cats,
    mutable=['intermediates'],
    rngs={'dropout': rng, 'noise': rng, 'augment': rng},
  )
  q = variables['intermediates']['q_logits'][0]
  want_ce = -jnp.mean(jax.nn.log_softmax(q)[jnp.arange(8), cats])
  loss, (_, _, gan_loss, ce) = objectives.g_loss_fn(
    g_state.params, d_state.params, g_state, d_state, z, rng, labels=cats, info_weight=0.5
  )
  np.testing.assert_allclose(ce, want_ce, rtol=1e-5)
  np.testing.assert_allclose(loss, gan_loss + 0.5 * ce, rtol=1e-6)
  d_loss, (*_, d_gan) = objectives.d_fake_loss_fn(
    d_state.params, g_state.params, g_state, d_state, z, rng, labels=cats, info_weight=0.5
  )
  np.testing.assert_allclose(d_loss, d_gan + 0.5 * want_ce, rtol=1e-5)
  # Through the step: Q learns, and the logs carry the InfoGAN term.
  cfg = objectives.StepConfig.from_config(tiny_config)
  batch = {'image': jax.random.uniform(jax.random.key(3), (16, 28, 28, 1), minval=-1, maxval=1)}
  _, d_out, metrics = train_step.train_step(g_state, d_state, batch, jax.random.key(4), cfg)
  assert not np.allclose(d_out.params['Q']['kernel'], d_state.params['Q']['kernel'])
  assert np.isfinite(float(metrics['info_loss']))


def test_infogan_needs_latent_categories(tiny_config):
  tiny_config.loss.info_weight = 1.0
  with pytest.raises(ConfigError, match=r'loss.info_weight \(InfoGAN\) needs model.latent_categories > 0'):
    validate(tiny_config)


def test_infogan_weight_decays_linearly_to_zero_through_the_step(tiny_config):
  tiny_config.model.latent_categories = 4
  tiny_config.loss.info_weight = 0.4
  tiny_config.loss.info_schedule = 'linear'
  tiny_config.train.num_steps = 10
  validate(tiny_config)
  cfg = objectives.StepConfig.from_config(tiny_config)
  weights = [float(objectives.info_weight_at(cfg, jnp.asarray(s))) for s in (0, 5, 10, 12)]
  np.testing.assert_allclose(weights, [0.4, 0.2, 0.0, 0.0], atol=1e-7)
  # The losses take the weight at G's step: InfoGAN's full term at the start, the GAN loss alone at the end.
  g_state, d_state = states.create_states(tiny_config, jax.random.key(0))
  z = jax.random.normal(jax.random.key(1), (8, tiny_config.model.latent_dim))
  cats = jnp.arange(8) % 4
  for step, weight in ((0, 0.4), (10, 0.0)):
    g = g_state.replace(step=jnp.asarray(step))
    w = objectives.info_weight_at(cfg, g.step)
    loss, (_, _, gan_loss, ce) = objectives.g_loss_fn(
      g.params, d_state.params, g, d_state, z, jax.random.key(2), labels=cats, info_weight=w
    )
    np.testing.assert_allclose(loss, gan_loss + weight * ce, rtol=1e-6)
    d_loss, (*_, d_gan) = objectives.d_fake_loss_fn(
      d_state.params, g.params, g, d_state, z, jax.random.key(2), labels=cats, info_weight=w
    )
    assert (d_loss > d_gan) == (weight > 0)
  batch = {'image': jax.random.uniform(jax.random.key(3), (16, 28, 28, 1), minval=-1, maxval=1)}
  _, _, metrics = train_step.train_step(g_state, d_state, batch, jax.random.key(4), cfg)
  assert np.isfinite(float(metrics['info_loss']))
  tiny_config.loss.info_schedule = 'cosine'
  with pytest.raises(ConfigError, match='loss.info_schedule must be one of'):
    validate(tiny_config)
