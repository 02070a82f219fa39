"""The code's shape: packages depend one way, models/ and data/ stay readable."""

import ast
import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ('common', 'configs', 'data', 'models', 'metrics', 'pictures', 'training', 'explorer')


def _trees(package):
  for path in sorted(glob.glob(os.path.join(ROOT, package, '*.py'))):
    with open(path) as f:
      yield path, ast.parse(f.read())


def _imports(package):
  """The facegan packages `package` (or a top-level script) imports, at any
  depth of its code."""
  found = set()
  trees = (
    _trees(package)
    if not package.endswith('.py')
    else [(package, ast.parse(open(os.path.join(ROOT, package)).read()))]
  )
  for _, tree in trees:
    for node in ast.walk(tree):
      if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        names = [node.module]
      elif isinstance(node, ast.Import):
        names = [a.name for a in node.names]
      else:
        continue
      found.update(n.split('.')[0] for n in names)
  return found & set(PACKAGES) - {package}


def test_no_package_imports_one_that_imports_it_back():
  graph = {p: _imports(p) for p in PACKAGES}

  def reaches(start, goal, seen=()):
    return any(n == goal or (n not in seen and reaches(n, goal, seen + (n,))) for n in graph[start])

  cycles = [p for p in PACKAGES if reaches(p, p)]
  assert not cycles, {p: sorted(graph[p]) for p in cycles}
  assert graph['common'] == set()  # the leaf
  assert graph['models'] <= {'common', 'configs', 'data'}
  assert 'training' not in graph['metrics'] | graph['pictures']


@pytest.mark.parametrize('script', ['generate.py', 'project.py', 'explore.py', 'evaluate.py'])
def test_the_inference_scripts_need_no_training_code(script):
  graph = {p: _imports(p) for p in PACKAGES}
  reached, todo = set(), list(_imports(script))
  while todo:  # every package the script reaches, directly or not
    p = todo.pop()
    if p not in reached:
      reached.add(p)
      todo += graph[p]
  assert 'models' in reached and 'training' not in reached


@pytest.mark.parametrize('package', ['models', 'data'])
def test_no_long_class_or_function(package):
  long = []
  for path, tree in _trees(package):
    for node in ast.walk(tree):
      limit = {ast.ClassDef: 200, ast.FunctionDef: 60}.get(type(node))
      if limit and node.end_lineno - node.lineno + 1 > limit:
        long.append(f'{os.path.relpath(path, ROOT)}:{node.name}')
  assert not long


@pytest.mark.parametrize('command', [['check'], ['format', '--check']])
def test_ruff_finds_nothing(command):
  """ruff.toml's lint rules and formatting hold for the whole repository."""
  pytest.importorskip('ruff')  # in requirements.txt: CI has it
  r = subprocess.run(
    [sys.executable, '-m', 'ruff', *command, '--no-cache', ROOT],
    capture_output=True,
    text=True,
    cwd=ROOT,
  )
  assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-1000:]
