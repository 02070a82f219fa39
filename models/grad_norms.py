"""Gradient norms, global and per layer: how each part of G and D learns."""

import collections

import tensorflow as tf


def layer_groups(variables):
  """Maps 'layer path' -> indices of its variables, for per-layer norms."""
  groups = collections.OrderedDict()
  for i, v in enumerate(variables):
    groups.setdefault(v.path.rsplit('/', 1)[0], []).append(i)
  return groups


def metric_names(groups_by_prefix):
  """Names of every norm that norms() returns, for {prefix: layer_groups}."""
  return [f'grad_norm/{p}' for p in groups_by_prefix] + [
    f'grad_norm/{p}/{name}' for p, groups in groups_by_prefix.items() for name in groups
  ]


def norms(prefix, grads, groups, scale):
  """'grad_norm/<prefix>' and 'grad_norm/<prefix>/<layer>' of `grads`.

  Each L2 norm is multiplied by `scale`, which undoes a replica share and a
  loss scale on the norms, not on the gradients, so no gradient is copied.
  With several replicas each sees its share of the batch, so
  replica-averaged norms are those of per-replica gradients.
  """
  squares = [tf.reduce_sum(tf.square(tf.cast(g, tf.float32))) for g in grads]
  out = {f'grad_norm/{prefix}': tf.sqrt(tf.add_n(squares)) * scale}
  for name, idx in groups.items():
    out[f'grad_norm/{prefix}/{name}'] = tf.sqrt(tf.add_n([squares[i] for i in idx])) * scale
  return out
