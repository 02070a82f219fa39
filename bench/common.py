"""Helpers shared by the benchmark scripts."""

import dataclasses
import os
import platform


def parse_overrides(items, config_cls):
  """{field: value} from 'field=value' strings, typed like config_cls's fields."""
  fields = {f.name: f.type for f in dataclasses.fields(config_cls)}
  out = {}
  for item in items:
    name, _, value = item.partition('=')
    kind = fields[name]
    kind = {'bool': bool, 'int': int, 'float': float, 'str': str}.get(kind, kind)
    out[name] = (value.lower() in ('1', 'true', 'yes') if kind is bool
                 else kind(value))
  return out


def machine() -> str:
  """CPU model and core count (or 'unknown')."""
  model = platform.processor() or 'unknown CPU'
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          model = line.split(':', 1)[1].strip()
          break
  except OSError:
    pass
  return f'{model}, {os.cpu_count()} cores'
