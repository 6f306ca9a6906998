"""A tiny variant of `mnist_mlp_bn.py` for tests and smoke runs: small widths, 20 steps.

Trains in seconds on one CPU core; the numbers mean nothing.

Launch:
  python -m ganjax.main --config=experiments/tiny.py --workdir=runs/tiny
"""

from ganjax.config import sibling


def get_config():
  config = sibling(__file__, 'mnist_mlp_bn')
  config.model.latent_dim = 8
  config.model.g_features = (16, 32)
  config.model.d_features = (4, 8)
  config.data.limit = 512
  config.train.num_steps = 20
  config.train.batch_size = 16
  config.train.log_every_steps = 5
  config.train.sample_every_steps = 10
  config.train.num_sample_images = 16
  config.checkpoint.every_steps = 10
  config.eval.every_steps = 10
  config.eval.num_samples = 64
  return config
