"""DCGAN (Radford et al. 2016) for your own images: pack them, then train.

  python -m ganjax.dataset --source ~/photos --dest data/photos32 --resolution 32
  python -m ganjax.main --config=experiments/images_dcgan.py --config.data.path=data/photos32 \
    --workdir=runs/photos_dcgan

The image size and channels come from the packed dataset; G and D are built for any size whose sides
halve to 4-7 (28, 32, 48, 64, 96, 128 ...): G from a 4x4 map (for 32 and 64) by 5x5 stride-2
transposed convolutions with BatchNorm and ReLU, D by 5x5 stride-2 convolutions with BatchNorm and
LeakyReLU 0.2, widths 64 at the image's side doubling towards the smallest map up to 512. BCE,
Adam(2e-4, 0.5), batch 64, random horizontal flips. For a class-conditional GAN on labelled folders
(packed with `--labels auto`): `--config.model.num_classes=-1` takes the dataset's classes.
The periodic evaluation scores samples on the FID Inception when its weights are given
(`--config.eval.inception_weights=FILE`, docs/fid.md), else logs their pixel statistics.
"""

from ganjax.config import sibling


def get_config():
  config = sibling(__file__, 'tutorial_gan')
  config.data.source = 'folder'
  config.data.image_shape = ()  # the packed dataset's
  config.data.random_flip = True
  config.model.g_arch = config.model.d_arch = 'dcgan'
  config.model.g_features = config.model.d_features = ()  # picked for the image size
  config.model.g_bn_momentum = 0.9
  config.model.d_norm = 'batch'
  config.train.num_steps = 20_000
  config.eval.every_steps = 2000
  return config
