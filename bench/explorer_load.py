"""The explorer under load: python bench/explorer_load.py --checkpoint=runs/celeba64.

Serves the run on loopback with the server explore.py uses (threaded, idle
timeout) and drives it from --clients threads, each sending --requests
requests on its own keep-alive connection, a mix of what a page sends:
slider moves (/api/render, 1 face, 60%), blend steps (/api/slerp, 20%), new
faces (/api/latents, 16, 10%) and /api/info (10%). The load runs twice:
alone, then while another client projects photos back to back
(/api/project). Prints throughput, p50/p95/p99 per kind and the process's
peak memory (server and clients share it; the clients' share is small).
"""

import http.client
import json
import logging
import os
import resource
import sys
import threading
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app
from absl import flags
import numpy as np

flags.DEFINE_string('checkpoint', None, 'Run directory or checkpoint prefix.')
flags.DEFINE_integer('clients', 8, 'Concurrent clients.', lower_bound=1)
flags.DEFINE_integer('requests', 50, 'Requests per client and phase.', lower_bound=1)
flags.DEFINE_string(
  'photo', 'tests/data/celeba/img_align_celeba/000001.jpg', 'Photo the projecting client uploads.'
)
flags.mark_flag_as_required('checkpoint')
FLAGS = flags.FLAGS

# (kind, share of requests): the order a client cycles through.
MIX = ['slider'] * 6 + ['blend'] * 2 + ['faces', 'info']


def _peak_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _request(conn, kind: str, z, i: int):
  """Sends one request of `kind`; returns its status."""
  bodies = {
    'slider': ('/api/render', dict(latents=[z[0]])),
    'blend': ('/api/slerp', dict(z1=z[0], z2=z[1], t=(i % 100) / 100)),
    'faces': ('/api/latents', dict(seed=i, n=16)),
  }
  if kind == 'info':
    conn.request('GET', '/api/info')
  else:
    path, body = bodies[kind]
    conn.request('POST', path, json.dumps(body), {'Content-Type': 'application/json'})
  response = conn.getresponse()
  response.read()
  return response.status


def _multipart(photo: bytes):
  boundary = 'facegan-bench-boundary'
  body = (
    (
      f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
      'filename="face.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
    ).encode()
    + photo
    + f'\r\n--{boundary}--\r\n'.encode()
  )
  return body, {'Content-Type': f'multipart/form-data; boundary={boundary}'}


def _phase(port: int, z, photo: bytes, project: bool):
  """One load phase; returns {kind: [seconds]}, errors, wall seconds."""
  times = {kind: [] for kind in set(MIX)}
  times['projection'] = []
  errors = []
  stop = threading.Event()

  def client(index: int):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=120)
    for i in range(FLAGS.requests):
      kind = MIX[(index + i) % len(MIX)]
      tick = time.perf_counter()
      status = _request(conn, kind, z, index * 1000 + i)
      times[kind].append(time.perf_counter() - tick)
      if status != 200:
        errors.append((kind, status))
    conn.close()

  def projector():
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=300)
    body, headers = _multipart(photo)
    while not stop.is_set():
      tick = time.perf_counter()
      conn.request('POST', '/api/project', body, headers)
      response = conn.getresponse()
      response.read()
      if response.status == 200:
        times['projection'].append(time.perf_counter() - tick)
      else:
        errors.append(('projection', response.status))
    conn.close()

  side = threading.Thread(target=projector) if project else None
  if side:
    side.start()
    time.sleep(1.0)  # the first projection is under way
  threads = [threading.Thread(target=client, args=(c,)) for c in range(FLAGS.clients)]
  tick = time.perf_counter()
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  wall = time.perf_counter() - tick
  stop.set()
  if side:
    side.join()
  return times, errors, wall


def main(argv):
  del argv
  logging.getLogger('werkzeug').setLevel(logging.WARNING)  # no line a request
  from explorer.app import create_app, make_server
  from training import checkpoints

  config, _, generator = checkpoints.load_generator(FLAGS.checkpoint)
  web = create_app(generator, config)
  server = make_server(web, '127.0.0.1', 0)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  z = np.random.default_rng(0).standard_normal((2, config.latent_dim)).tolist()
  with open(FLAGS.photo, 'rb') as f:
    photo = f.read()
  # Warm-up: every endpoint traced once.
  conn = http.client.HTTPConnection('127.0.0.1', server.port, timeout=300)
  for kind in set(MIX):
    assert _request(conn, kind, z, 0) == 200, kind
  body, headers = _multipart(photo)
  conn.request('POST', '/api/project', body, headers)
  response = conn.getresponse()
  response.read()
  assert response.status == 200, response.status
  conn.close()
  baseline = _peak_mb()
  print(
    f'{config.image_height}x{config.image_width}, {os.cpu_count()} CPU '
    f'threads, {FLAGS.clients} clients x {FLAGS.requests} requests; peak '
    f'memory after warm-up {baseline:.0f} MB'
  )
  for project in (False, True):
    times, errors, wall = _phase(server.port, z, photo, project)
    total = sum(len(v) for k, v in times.items() if k != 'projection')
    print(
      f'\n{"with" if project else "without"} a projection running: '
      f'{total / wall:.1f} requests/s, {len(errors)} errors '
      f'{sorted(set(errors))[:4]}, peak memory {_peak_mb():.0f} MB'
    )
    for kind, seconds in sorted(times.items()):
      if seconds:
        ms = 1e3 * np.asarray(seconds)
        print(
          f'  {kind:10s} n={len(ms):4d}  p50 {np.percentile(ms, 50):7.1f} '
          f'ms  p95 {np.percentile(ms, 95):7.1f} ms  p99 '
          f'{np.percentile(ms, 99):7.1f} ms',
          flush=True,
        )
  server.shutdown()


if __name__ == '__main__':
  app.run(main)
