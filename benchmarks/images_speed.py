"""Your own images at speed: packing them, and training on a set streamed from the host.

  python benchmarks/images_speed.py [--num 50000] [--steps 300] [--repeats 2] [--work DIR] [--doc]

1. Pack: writes `--num` random-texture 64x64 RGB PNGs in 10 class folders (kept in --work between
   runs), then times `python -m ganjax.dataset --resolution 32 --labels auto` on them, start to exit,
   with as many decoding processes as this process may use cores. Target: 50,000 in 60 s or less
   on 2 cores.
2. Stream: trains `experiments/images_dcgan.py` on the packed set for --steps steps with the images
   on the device (`data.device_cache_mb` above the set's size) and streamed from the host
   (`data.device_cache_mb=0`), alternating, --repeats times each; steps/s after the first step, from
   each run's summary. Target: streamed at 90% or more of on-device.

With --doc it writes the result between the images markers of docs/performance.md. A record of this
machine, taken on a quiet machine; not a test.
"""

import argparse
import datetime
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC = ROOT / 'docs' / 'performance.md'
START, END = '<!-- images:start -->', '<!-- images:end -->'


def make_images(folder: pathlib.Path, num: int) -> None:
  """`num` 64x64 PNGs in 10 class folders: smooth random colour fields, so PNG compresses as photos do."""
  from PIL import Image

  done = folder / 'complete'
  if done.is_file() and done.read_text() == str(num):
    return
  rng = np.random.default_rng(0)
  for i in range(num):
    coarse = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize((64, 64), Image.Resampling.BICUBIC)
    target = folder / f'class_{i % 10}'
    target.mkdir(parents=True, exist_ok=True)
    image.save(target / f'{i:06d}.png')
  done.write_text(str(num))


def time_pack(src: pathlib.Path, dest: pathlib.Path) -> float:
  args = ['--source', src, '--dest', dest, '--resolution', '32', '--labels', 'auto', '--overwrite']
  t0 = time.perf_counter()
  proc = subprocess.run(
    [sys.executable, '-m', 'ganjax.dataset', *map(str, args)], cwd=ROOT, capture_output=True, text=True
  )
  seconds = time.perf_counter() - t0
  if proc.returncode:
    raise SystemExit(f'packing failed: {proc.stderr[-2000:]}')
  print(proc.stdout.strip().splitlines()[-1], flush=True)
  return seconds


def steps_per_s(packed: pathlib.Path, workdir: pathlib.Path, steps: int, cache_mb: int) -> float:
  args = [
    '--config=experiments/images_dcgan.py',
    f'--config.data.path={packed}',
    f'--workdir={workdir}',
    f'--config.train.num_steps={steps}',
    f'--config.data.device_cache_mb={cache_mb}',
    '--config.eval.every_steps=0',
    '--config.train.sample_every_steps=0',
    '--config.checkpoint.enabled=False',
  ]
  proc = subprocess.run([sys.executable, '-m', 'ganjax.main', *args], cwd=ROOT, capture_output=True, text=True)
  if proc.returncode:
    raise SystemExit(f'training failed: {proc.stderr[-2000:]}')
  return json.loads((workdir / 'summary.json').read_text())['steps_per_s']


def measure(num: int, steps: int, repeats: int, work: pathlib.Path) -> dict:
  src, packed = work / f'src{num}', work / f'packed{num}'
  t0 = time.perf_counter()
  make_images(src, num)
  print(f'{num} source images ready in {time.perf_counter() - t0:.0f} s', flush=True)
  pack_s = time_pack(src, packed)
  print(f'packed in {pack_s:.1f} s', flush=True)
  size_mb = (packed / 'images.npy').stat().st_size / 2**20
  device, streamed = [], []
  with tempfile.TemporaryDirectory() as tmp:
    for i in range(repeats):
      for name, runs, cache in (('device', device, int(size_mb) + 64), ('streamed', streamed, 0)):
        runs.append(steps_per_s(packed, pathlib.Path(tmp) / f'{name}{i}', steps, cache))
        print(f'{name} {i}: {runs[-1]:.2f} steps/s', flush=True)
  return {
    'num_images': num,
    'pack_s': pack_s,
    'pack_images_per_s': num / pack_s,
    'dataset_mb': size_mb,
    'steps': steps,
    'repeats': repeats,
    'device_steps_per_s': statistics.median(device),
    'streamed_steps_per_s': statistics.median(streamed),
    'streamed_fraction': statistics.median(streamed) / statistics.median(device),
    'cores': len(os.sched_getaffinity(0)),
  }


def text(r: dict) -> str:
  from quality import machine
  from readme_block import code_now

  return '\n'.join(
    [
      f'Written by `python benchmarks/images_speed.py --doc` on {datetime.date.today()}: {code_now()}; {machine()}.',
      '',
      '| measure | value | target |',
      '| --- | ---: | ---: |',
      f'| pack {r["num_images"]:,} PNGs of 64x64 to 32x32 (`python -m ganjax.dataset`, {r["cores"]} processes), '
      f'start to exit | {r["pack_s"]:.1f} s ({r["pack_images_per_s"]:,.0f} images/s) | <= 60 s |',
      f'| `images_dcgan.py` at batch 64, images on the device | {r["device_steps_per_s"]:.2f} steps/s | |',
      f'| the same, streamed from the host (`data.device_cache_mb=0`) | {r["streamed_steps_per_s"]:.2f} steps/s '
      f'({100 * r["streamed_fraction"]:.0f}%) | >= 90% |',
      '',
      f'Steps/s are medians of {r["repeats"]} runs of {r["steps"]} steps each way, alternating, after the first '
      f'step; the packed set holds {r["dataset_mb"]:.0f} MB.',
    ]
  )


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--num', type=int, default=50_000, help='images to make and pack')
  parser.add_argument('--steps', type=int, default=300, help='training steps per run')
  parser.add_argument('--repeats', type=int, default=2, help='runs each way')
  parser.add_argument('--work', default=str(pathlib.Path(tempfile.gettempdir()) / 'ganjax_images_bench'))
  parser.add_argument('--doc', action='store_true', help='write the table into docs/performance.md')
  args = parser.parse_args()
  work = pathlib.Path(args.work)
  work.mkdir(parents=True, exist_ok=True)
  result = measure(args.num, args.steps, args.repeats, work)
  print(json.dumps(result))
  out = text(result)
  print(out)
  if args.doc:
    from readme_block import write

    write(START, END, out, DOC)


if __name__ == '__main__':
  main()
