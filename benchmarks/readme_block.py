"""How the benchmark scripts write their tables: between two markers of README.md or of a page in docs/.

Every table names the code that produced it: the commit and its date (`ganjax.provenance`), read
from the runs' `summary.json` when the script tabulates runs, or of the code running now when the
script measures in its own process.
"""

import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / 'README.md'
DOCS = ROOT / 'docs'


def write(start: str, end: str, text: str, target: pathlib.Path = README) -> None:
  """Puts `text` between the `start` and `end` markers of `target`; SystemExit if they are missing."""
  content = target.read_text()
  if start not in content or end not in content:
    raise SystemExit(f'{target} has no {start} ... {end} markers')
  head, rest = content.split(start)
  _, tail = rest.split(end)
  tmp = target.with_name(f'.{target.name}.tmp')
  tmp.write_text(f'{head}{start}\n{text}\n{end}{tail}')
  tmp.replace(target)
  print(f'{target.relative_to(ROOT)} updated')


def code_now() -> str:
  """'commit 1a2b3c4 of 2026-12-02' for the code running this script."""
  from ganjax import provenance

  return provenance.describe_code()


def code_of_runs(workdirs: list[pathlib.Path]) -> str:
  """The code that trained these runs: one phrase, or each distinct one joined.

  From a run's summary.json, or from its latest checkpoint when it was stopped before writing one
  (a budgeted run ends by SIGTERM). A run written before ganjax recorded provenance counts as
  'code not recorded'.
  """
  from ganjax import provenance

  found = []
  for workdir in workdirs:
    phrase = provenance.describe_code(code) if (code := _recorded_code(workdir)) else 'code not recorded'
    if phrase not in found:
      found.append(phrase)
  return ' and '.join(found) if found else 'code not recorded'


def _recorded_code(workdir: pathlib.Path) -> dict | None:
  summary = workdir / 'summary.json'
  if summary.is_file():
    return (json.loads(summary.read_text()).get('provenance') or {}).get('code')
  from ganjax import checkpoint
  from ganjax.errors import CheckpointError

  try:
    _, meta, manager, _ = checkpoint.read_meta(workdir)
  except CheckpointError:
    return None
  manager.close()
  return meta.get('code')
