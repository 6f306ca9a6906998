"""Toy benchmark: 8 Gaussians on a ring (radius 2, std 0.02), MLP G and D.

Trained like `mnist_mlp_bn.py` (the MLP fix of the tutorial): BCE, Adam(2e-4, b1=0.5), two D
updates per step, BatchNorm in G and a minibatch-std feature in D; here G and
D are MLPs of three 128-unit layers, batch 256. Without BatchNorm and
minibatch std (`--config.model.g_norm=none --config.model.d_minibatch_std=False`,
i.e. the tutorial's training) it collapses onto one mode.

Mode collapse is counted directly: `eval/modes_covered` (of 8) and
`eval/high_quality` (share of samples within 3 std of a mode), with a scatter
plot of 2,500 samples over the modes in `samples/`.

Launch:
  python -m ganjax.main --config=experiments/toy_ring8.py --workdir=runs/toy_ring8
"""

from ganjax.config import sibling


def get_config():
  config = sibling(__file__, 'mnist_mlp_bn')
  config.data.source = 'toy'
  config.data.toy_name = 'ring8'
  config.data.image_shape = (2,)
  config.model.latent_dim = 8
  config.model.g_features = (128, 128, 128)
  config.model.g_output = 'linear'
  config.model.d_arch = 'mlp'
  config.model.d_features = (128, 128, 128)
  config.train.batch_size = 256
  config.train.num_steps = 5000
  config.train.log_every_steps = 500
  config.train.sample_every_steps = 1000
  config.checkpoint.every_steps = 0
  config.eval.every_steps = 500
  config.eval.num_samples = 2500
  return config
