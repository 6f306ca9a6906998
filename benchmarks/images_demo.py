"""A real run on images that are not MNIST's format: the two README commands on coloured digits.

  python benchmarks/images_demo.py [--steps 3000] [--work DIR] [--doc]

Writes the shipped MNIST digits as 28x28 RGB PNG files in ten class folders, each digit stroked in
a colour drawn from its index on a dark background of another colour (so the set has colour,
backgrounds and classes, as a user's folder would), then runs the two commands of the README:
`python -m ganjax.dataset --resolution 32 --labels auto` and `python -m ganjax.main
--config=images_dcgan` (unconditional) for --steps steps. With --doc it copies the last sample grid
and a grid of real packed images to docs/images/ and writes the caption between the demo markers
of docs/images.md. One run on this machine: a picture of the pipeline working, not a quality claim.
"""

import argparse
import datetime
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC = ROOT / 'docs' / 'images.md'
START, END = '<!-- demo:start -->', '<!-- demo:end -->'


def write_digits(folder: pathlib.Path) -> int:
  """The shipped digits as coloured PNGs in class folders; returns how many."""
  from PIL import Image

  from ganjax import input_pipeline

  ds = input_pipeline.load_shipped_mnist()
  rng = np.random.default_rng(0)
  for i, (digit, label) in enumerate(zip(ds.images[..., 0], ds.labels, strict=True)):
    ink, paper = rng.uniform(0.45, 1.0, 3), rng.uniform(0.0, 0.3, 3)
    alpha = digit[..., None].astype(np.float32) / 255.0
    rgb = np.rint(255 * (alpha * ink + (1 - alpha) * paper)).astype(np.uint8)
    target = folder / f'digit_{label}'
    target.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(target / f'{i:05d}.png')
  return len(ds)


def run(args: list[str], module: str) -> str:
  proc = subprocess.run([sys.executable, '-m', module, *args], cwd=ROOT, capture_output=True, text=True)
  if proc.returncode:
    raise SystemExit(f'{module} failed: {proc.stderr[-2000:]}')
  return proc.stdout.strip().splitlines()[-1]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--steps', type=int, default=3000)
  parser.add_argument('--work', default=str(pathlib.Path(tempfile.gettempdir()) / 'ganjax_images_demo'))
  parser.add_argument('--doc', action='store_true', help='copy the grids to docs/images/ and write the caption')
  args = parser.parse_args()
  work = pathlib.Path(args.work)
  shutil.rmtree(work, ignore_errors=True)
  num = write_digits(work / 'src')
  packed_line = run(['--source', str(work / 'src'), '--dest', str(work / 'packed'), '--resolution', '32',
                     '--labels', 'auto'], 'ganjax.dataset')  # fmt: skip
  print(packed_line, flush=True)
  workdir = work / 'run'
  flags = [
    '--config=images_dcgan',
    f'--config.data.path={work / "packed"}',
    f'--workdir={workdir}',
    f'--config.train.num_steps={args.steps}',
    f'--config.train.sample_every_steps={args.steps}',
    f'--config.eval.every_steps={args.steps}',
  ]
  print(run(flags, 'ganjax.main'), flush=True)
  summary = json.loads((workdir / 'summary.json').read_text())
  grid = workdir / 'samples' / f'step_{args.steps:06d}.png'
  if not args.doc:
    print(f'samples: {grid}')
    return
  from quality import machine
  from readme_block import code_of_runs, write

  from ganjax import packed, writers

  out = ROOT / 'docs' / 'images'
  out.mkdir(exist_ok=True)
  shutil.copy(grid, out / 'demo_samples.png')
  images, _, _ = packed.open_packed(work / 'packed')
  real = np.asarray(images[np.random.default_rng(0).choice(len(images), 64, replace=False)], np.float32)
  writers.save_png(writers.image_grid(real / 127.5 - 1.0), out / 'demo_real.png')
  text = '\n'.join(
    [
      f'Written by `python benchmarks/images_demo.py --steps {args.steps} --doc` on {datetime.date.today()}: '
      f'trained by {code_of_runs([workdir])}; {machine()}.',
      '',
      '| real (packed, 32x32 RGB) | `images_dcgan.py`, step ' + f'{args.steps:,} |',
      '| --- | --- |',
      '| ![](images/demo_real.png) | ![](images/demo_samples.png) |',
      '',
      f'{num:,} coloured digits packed by the first command ("{packed_line}"); the second trained for '
      f'{args.steps:,} steps at batch 64 in {summary["wall_s"] / 60:.1f} min ({summary["steps_per_s"]:.1f} steps/s '
      f'after {summary["first_step_s"]:.0f} s of setup and compilation), seed 0, one run.',
    ]
  )
  write(START, END, text, DOC)


if __name__ == '__main__':
  main()
