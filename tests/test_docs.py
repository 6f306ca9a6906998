"""The documentation: README within its length, every relative link and image resolves, every script-written
block has its markers, and the extending page's examples run."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PAGES = [ROOT / 'README.md', *sorted((ROOT / 'docs').glob('*.md'))]
_LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)\)')
_FENCE = re.compile(r'^```(\w*)\n(.*?)^```', re.S | re.M)


def _slug(heading: str) -> str:
  """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
  text = re.sub(r'[^\w\- ]', '', heading.strip().lower())
  return text.replace(' ', '-')


def _anchors(page: pathlib.Path) -> set[str]:
  text = _FENCE.sub('', page.read_text())
  return {_slug(m.group(1)) for m in re.finditer(r'^#+ (.+)$', text, re.M)}


def test_readme_is_short_and_the_docs_pages_exist():
  assert len((ROOT / 'README.md').read_text().splitlines()) <= 250
  names = {p.stem for p in PAGES[1:]}
  wanted = {'results', 'evaluation', 'dynamics', 'distributed', 'performance', 'design', 'testing', 'extending'}
  assert wanted <= names, wanted - names


@pytest.mark.parametrize('page', PAGES, ids=lambda p: p.name)
def test_every_relative_link_and_image_resolves(page):
  text = _FENCE.sub('', page.read_text())
  broken = []
  for target in _LINK.findall(text):
    if re.match(r'[a-z]+:', target):
      continue  # http(s), mailto: not checked offline
    path, _, anchor = target.partition('#')
    resolved = (page.parent / path).resolve() if path else page
    missing_anchor = anchor and resolved.suffix == '.md' and anchor not in _anchors(resolved)
    if not resolved.exists() or missing_anchor:
      broken.append(target)
  assert not broken, f'{page.name}: links that do not resolve: {broken}'


def test_every_script_block_has_its_markers():
  """Each table script writes between markers of its target page: they must be there, once each."""
  blocks = {
    'README.md': ('headline', 'warmstart', 'stacked'),
    'docs/results.md': ('quality', 'toy', 'compare', 'rules'),
    'docs/performance.md': ('perf', 'images', 'resnet-convs', 'sngan', 'inception-speed'),
    'docs/images.md': ('demo',),
    'docs/evaluation.md': ('stacked-small-d',),
  }
  for page, names in blocks.items():
    text = (ROOT / page).read_text()
    for name in names:
      assert text.count(f'<!-- {name}:start -->') == 1 and text.count(f'<!-- {name}:end -->') == 1, (page, name)


def test_the_extending_page_examples_run(tmp_path):
  blocks = _FENCE.findall((ROOT / 'docs' / 'extending.md').read_text())
  python = [code for lang, code in blocks if lang == 'python']
  bash = [code for lang, code in blocks if lang == 'bash']
  assert len(python) == 4 and len(bash) == 1 and {lang for lang, _ in blocks} == {'python', 'bash', 'text'}
  env = {**os.environ, 'PYTHONPATH': str(ROOT), 'PYTHONUNBUFFERED': '1'}
  # All Python blocks in one process, in page order: later blocks use earlier imports, as a reader would.
  script = tmp_path / 'examples.py'
  script.write_text('\n\n'.join(python))
  proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True)
  assert proc.returncode == 0, proc.stderr[-4000:]
  for expected in ('lsgan_m11 d_loss', 'small_conv samples (4, 28, 28, 1)', 'bars pixel_std', 'colab grid'):
    assert expected in proc.stdout, proc.stdout[-3000:]
  assert (tmp_path / 'samples.png').stat().st_size > 0
  proc = subprocess.run(['bash', '-e', '-c', bash[0]], cwd=tmp_path, env=env, capture_output=True, text=True)
  assert proc.returncode == 0, proc.stderr[-4000:]
  # The ablation table: one row per member and a mean ± std row for each of the two workdirs.
  assert proc.stdout.count('±') >= 2 and 'ablation_hinge' in proc.stdout, proc.stdout[-3000:]
