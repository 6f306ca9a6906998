"""The SNGAN ResNet (Miyato et al. 2018) for your own images, trained as mimicry's `sngan_32.py`.

  python -m ganjax.dataset --source ~/photos --dest data/photos32 --resolution 32
  python -m ganjax.main --config=experiments/images_sngan.py --config.data.path=data/photos32 \
    --workdir=runs/photos_sngan

G: z of 128 -> 4x4x256 -> three upsampling residual blocks of 256 channels -> BatchNorm, ReLU,
3x3 conv, tanh. D: an optimised block of 128 channels, one downsampling block and two plain blocks,
ReLU, a sum over positions and a linear layer, all spectrally normalised (ganjax/resnet.py; one more
block in each per doubling of the side for 64 and 128). Hinge loss, Adam(2e-4, betas (0.0, 0.9)),
5 D updates per G update, each on real and fake together, batch 64, both rates decaying linearly to
0 over 100,000 G steps, as mimicry trains it. For a class-conditional GAN (conditional BatchNorm in G,
projection in D) on labelled folders: `--config.model.num_classes=-1`.
"""

from ganjax.config import sibling


def get_config():
  config = sibling(__file__, 'tutorial_gan')
  config.data.source = 'folder'
  config.data.image_shape = ()  # the packed dataset's
  config.model.latent_dim = 128
  config.model.g_arch = config.model.d_arch = 'resnet'
  config.model.g_features = config.model.d_features = ()  # 256 per G block, 128 per D block
  config.loss.name = 'hinge'
  config.opt.g_lr = config.opt.d_lr = 2e-4
  config.opt.b1, config.opt.b2, config.opt.eps = 0.0, 0.9, 1e-8
  config.opt.schedule = 'linear'
  config.train.n_critic = 5
  config.train.d_update = 'joint'
  config.train.num_steps = 100_000
  config.train.log_every_steps = 100
  config.train.sample_every_steps = 1000
  config.eval.every_steps = 5000
  config.checkpoint.every_steps = 5000
  return config
