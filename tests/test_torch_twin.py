"""The PyTorch twin of the default (benchmarks/torch_gan.py) computes ganjax's function: the speed
comparison in benchmarks/step_speed.py is of the same networks and losses. Needs torch (the bench extra)."""

import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import objectives, states
from ganjax.config import load_experiment

torch = pytest.importorskip('torch', reason="the PyTorch twin needs torch: pip install -e '.[bench]'")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / 'benchmarks'))
import torch_gan  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _nchw(x) -> 'torch.Tensor':
  return torch.from_numpy(np.array(x, np.float32)).permute(0, 3, 1, 2).contiguous()


def test_the_default_twin_computes_the_same_networks_and_losses():
  config = load_experiment(ROOT / 'experiments' / 'mnist_gan.py')
  g_state, d_state = states.create_states(config, jax.random.key(0))
  # Trained-looking weights: perturb the initial ones, so that biases and BatchNorm affine terms count too.
  leaves, tree = jax.tree.flatten((g_state.params, d_state.params))
  keys = jax.random.split(jax.random.key(1), len(leaves))
  g_params, d_params = jax.tree.unflatten(
    tree, [x + 0.05 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=True)]
  )
  g_state, d_state = g_state.replace(params=g_params), d_state.replace(params=d_params)
  g, d = torch_gan.DefaultG(), torch_gan.DefaultD()
  torch_gan.load_flax(g, d, g_params, g_state.batch_stats, d_params)
  g.train(), d.train()

  z = jax.random.normal(jax.random.key(2), (16, config.model.latent_dim))
  labels = jnp.arange(16) % 10
  real = jax.random.uniform(jax.random.key(3), (16, 28, 28, 1), minval=-1, maxval=1)
  z_t, labels_t = torch.tensor(np.asarray(z)), torch.tensor(np.asarray(labels, np.int64))

  # G with its running statistics (first: a training-mode pass moves them), then with the batch's.
  eval_fakes, _ = states.generate(g_state, z, params=g_params, train=False, labels=labels)
  fakes, _ = states.generate(g_state, z, params=g_params, train=True, labels=labels)
  with torch.no_grad():
    g.eval()
    np.testing.assert_allclose(g(z_t, labels_t).numpy(), _nchw(eval_fakes).numpy(), atol=2e-5)
    g.train()
    np.testing.assert_allclose(g(z_t, labels_t).numpy(), _nchw(fakes).numpy(), atol=2e-5)
  # D's logit and Q head, on reals and on fakes.
  for images in (real, fakes):
    logits, variables = d_state.apply_fn({'params': d_params}, images, train=True, mutable=['intermediates'])
    with torch.no_grad():
      t_logits, t_q = d(_nchw(images))
    np.testing.assert_allclose(t_logits.numpy(), np.asarray(logits), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(t_q.numpy(), np.asarray(variables['intermediates']['q_logits'][0]), rtol=1e-4, atol=1e-5)
  # The losses both updates take gradients of, at the same weights and inputs.
  rng = jax.random.key(4)
  g_loss, _ = objectives.g_loss_fn(g_params, d_params, g_state, d_state, z, rng, labels=labels, info_weight=0.2)
  np.testing.assert_allclose(torch_gan.default_g_loss(g, d, z_t, labels_t).item(), float(g_loss), rtol=1e-5)
  fake_loss, _ = objectives.d_fake_loss_fn(d_params, g_params, g_state, d_state, z, rng, labels=labels, info_weight=0.2)
  real_logits, _ = d_state.apply_fn({'params': d_params}, real, train=True, mutable=['intermediates'])
  real_loss = jnp.mean(jax.nn.softplus(-real_logits))  # BCE towards 1 on logits
  want = 0.5 * (real_loss + fake_loss)
  got = torch_gan.default_d_loss(g, d, _nchw(real), z_t, labels_t).item()
  np.testing.assert_allclose(got, float(want), rtol=1e-5)


def test_the_sngan_twin_computes_the_same_networks_and_losses():
  """experiments/images_sngan.py's ResNet G and D (small widths, 32x32 RGB) against benchmarks/torch_gan.py's."""
  config = load_experiment(ROOT / 'experiments' / 'images_sngan.py')
  config.data.source, config.data.image_shape = 'mnist', (32, 32, 3)  # shapes only: no data is read
  config.model.g_features, config.model.d_features = (16, 16, 16), (8, 8, 8, 8)
  g_state, d_state = states.create_states(config, jax.random.key(0))
  leaves, tree = jax.tree.flatten((g_state.params, d_state.params))
  keys = jax.random.split(jax.random.key(1), len(leaves))
  g_params, d_params = jax.tree.unflatten(
    tree, [x + 0.05 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=True)]
  )
  g, d = torch_gan.SNGANG(128, (16, 16, 16)), torch_gan.SNGAND((8, 8, 8, 8))
  d_stats = torch_gan.load_sngan(g, d, g_params, g_state.batch_stats, d_params)
  g_state = g_state.replace(params=g_params)
  d_state = d_state.replace(params=d_params, batch_stats=jax.tree.map(jnp.asarray, d_stats))
  g.train(), d.eval()  # D's vectors are exact: the twin divides by u.Wv without another iteration

  z = jax.random.normal(jax.random.key(2), (8, 128))
  real = jax.random.uniform(jax.random.key(3), (8, 32, 32, 3), minval=-1, maxval=1)
  z_t = torch.tensor(np.asarray(z))
  fakes, _ = states.generate(g_state, z, params=g_params, train=True)
  with torch.no_grad():
    np.testing.assert_allclose(g(z_t).numpy(), _nchw(fakes).numpy(), atol=3e-5)
  for images in (real, fakes):
    logits, _ = objectives.discriminate(d_state, d_params, images, jax.random.key(5))
    with torch.no_grad():
      np.testing.assert_allclose(d(_nchw(images)).numpy(), np.asarray(logits), rtol=1e-4, atol=1e-4)
  # The hinge losses both updates take gradients of.
  rng = jax.random.key(4)
  g_loss, _ = objectives.g_loss_fn(g_params, d_params, g_state, d_state, z, rng, loss_name='hinge')
  np.testing.assert_allclose(torch_gan.hinge_g_loss(g, d, z_t).item(), float(g_loss), rtol=1e-4)
  d.eval()
  fake_loss, _ = objectives.d_fake_loss_fn(d_params, g_params, g_state, d_state, z, rng, loss_name='hinge')
  real_logits, _ = objectives.discriminate(d_state, d_params, real, rng)
  want = 0.5 * (jnp.mean(jax.nn.relu(1 - real_logits)) + fake_loss)
  with torch.no_grad():
    got = torch_gan.hinge_d_loss(d, _nchw(real), _nchw(fakes)).item()
  np.testing.assert_allclose(got, float(want), rtol=1e-4)
