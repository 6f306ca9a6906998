"""Stacked MNIST with D at a quarter of its width (PacGAN's Table 3, the harder setting): `stacked_mnist.py`
with D's convolutions 16 and 32 wide instead of 64 and 128. `--config.model.d_pack=2` packs it.
`python benchmarks/stacked_table.py --docs` trains both over 3 seeds for docs/evaluation.md's table. It keeps
PacGAN's Adam(2e-4) held constant for 6,000 steps, without augmentation or an EMA of G, at which that table
ran, where the full-width configs now take DiffAugment's translation at Adam(6e-4) and sample an EMA of G.

Launch:
  python -m ganjax.main --config=experiments/stacked_mnist_small_d.py --workdir=runs/stacked_small_d
"""

from ganjax.config import sibling


def get_config():
  config = sibling(__file__, 'stacked_mnist')
  config.model.d_features = (16, 32)
  config.model.d_augment = ''
  config.opt.g_lr = config.opt.d_lr = 2e-4
  config.opt.schedule = 'constant'
  config.opt.decay_from = 0.0
  config.train.num_steps = 6000
  config.train.g_ema_decay = 0.0
  return config
