"""Replaces the text between two markers in README.md: how the benchmark scripts write their tables."""

import pathlib

README = pathlib.Path(__file__).resolve().parent.parent / 'README.md'


def write(start: str, end: str, text: str) -> None:
  """Puts `text` between the `start` and `end` markers of README.md; SystemExit if they are missing."""
  content = README.read_text()
  if start not in content or end not in content:
    raise SystemExit(f'README.md has no {start} ... {end} markers')
  head, rest = content.split(start)
  _, tail = rest.split(end)
  README.write_text(f'{head}{start}\n{text}\n{end}{tail}')
  print('README.md updated')
