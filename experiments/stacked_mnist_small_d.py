"""Stacked MNIST with D at a quarter of its width (PacGAN's Table 3, the harder setting): `stacked_mnist.py`
with D's convolutions 16 and 32 wide instead of 64 and 128. `--config.model.d_pack=2` packs it.
`python benchmarks/stacked_table.py --docs` trains both over 3 seeds for docs/evaluation.md's table. It keeps
PacGAN's Adam(2e-4) and 6,000 steps, at which that table ran, where the full-width configs now take 4e-4
and 7,500.

Launch:
  python -m ganjax.main --config=experiments/stacked_mnist_small_d.py --workdir=runs/stacked_small_d
"""

from ganjax.config import sibling


def get_config():
  config = sibling(__file__, 'stacked_mnist')
  config.model.d_features = (16, 32)
  config.opt.g_lr = config.opt.d_lr = 2e-4
  config.train.num_steps = 6000
  return config
