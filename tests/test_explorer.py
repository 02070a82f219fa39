"""The explorer: its API on a tiny run, bad input, and explore.py's own errors."""

import base64
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image

from explorer import app as explorer_app
from explorer.app import create_app, make_server
from models import directions, latents, streams
from training import checkpoints

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FACE = os.path.join(ROOT, 'tests', 'data', 'celeba', 'img_align_celeba', '000001.jpg')


@pytest.fixture(scope='module')
def client(tiny_run):
  config, _, generator = checkpoints.load_generator(tiny_run)
  edits = directions.find_directions(generator, config, components=4, num_samples=256)
  web = create_app(generator, config, 'tiny', project_steps=20, directions=edits)
  return web.test_client(), config, generator


def _image(data_url):
  assert data_url.startswith('data:image/png;base64,')
  return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(',', 1)[1]))))


def test_the_page_and_info(client):
  c, config, _ = client
  page = c.get('/')
  assert page.status_code == 200 and b'facegan explorer' in page.data
  assert c.get('/api/info').get_json() == dict(
    latent_dim=16, latent_dist='normal', height=32, width=32, run='tiny'
  )


def test_faces_are_generate_py_s_grid_and_render_as_g_does(client):
  c, config, generator = client
  out = c.post('/api/latents', json=dict(seed=5, n=4)).get_json()
  z = latents.sample_latents(config, 4, 5, streams.GRID)
  np.testing.assert_allclose(out['latents'], z, rtol=1e-6)
  images = [_image(u) for u in out['images']]
  np.testing.assert_allclose(np.stack(images), latents.render(generator, z), atol=1)
  truncated = c.post('/api/latents', json=dict(seed=5, n=4, truncation=0.5))
  assert np.abs(truncated.get_json()['latents']).max() <= 0.5
  # A moved slider: one dimension changed, another image.
  moved = z[0].copy()
  moved[3] += 2.0
  again = c.post('/api/render', json=dict(latents=[z[0].tolist(), moved.tolist()])).get_json()
  first, second = (_image(u) for u in again['images'])
  np.testing.assert_array_equal(first, images[0])
  assert not np.array_equal(first, second)


def test_slerp_ends_on_the_picked_faces_and_latents_round_trip(client):
  c, config, _ = client
  z = latents.sample_latents(config, 2, 0, streams.GRID)
  ends = [
    c.post('/api/slerp', json=dict(z1=z[0].tolist(), z2=z[1].tolist(), t=t)).get_json()
    for t in (0, 1)
  ]
  np.testing.assert_allclose(ends[0]['latent'], z[0], rtol=1e-6)
  np.testing.assert_allclose(ends[1]['latent'], z[1], rtol=1e-6)
  npy = c.post('/api/npy', json=dict(latent=z[1].tolist()))
  assert npy.status_code == 200
  np.testing.assert_array_equal(np.load(io.BytesIO(npy.data)), z[1])
  loaded = c.post('/api/latent', data=dict(file=(io.BytesIO(npy.data), 'z.npy')))
  np.testing.assert_array_equal(_image(loaded.get_json()['image']), _image(ends[1]['image']))


def test_directions_are_served_and_move_a_face_as_g_draws_it(client):
  c, config, generator = client
  served = c.get('/api/directions').get_json()
  u = np.asarray(served['vectors'])
  assert u.shape == (4, 16) and len(served['variance']) == 4
  np.testing.assert_allclose(u @ u.T, np.eye(4), atol=1e-5)
  z = latents.sample_latents(config, 1, 2, streams.GRID)[0]
  out = c.post('/api/direction', json=dict(latent=z.tolist(), index=1, amounts=[-2, 0, 2.5]))
  moved = np.asarray(out.get_json()['latents'])
  np.testing.assert_allclose(moved, z + np.array([[-2.0], [0.0], [2.5]]) * u[1], atol=1e-5)
  images = np.stack([_image(x) for x in out.get_json()['images']])
  np.testing.assert_allclose(images, latents.render(generator, moved), atol=1)
  assert not np.array_equal(images[0], images[2])


def test_without_directions_the_page_gets_none_and_a_move_is_refused(tiny_run):
  config, _, generator = checkpoints.load_generator(tiny_run)
  c = create_app(generator, config, 'tiny').test_client()
  assert c.get('/api/directions').get_json() == dict(vectors=[], variance=[])
  r = c.post('/api/direction', json=dict(latent=[0.0] * 16, index=0, amounts=[1]))
  assert r.status_code == 400 and 'without edit directions' in r.get_json()['error']


def test_an_uploaded_photo_is_projected(client):
  c, _, _ = client
  with open(FACE, 'rb') as f:
    out = c.post('/api/project', data=dict(file=(f, 'face.jpg'))).get_json()
  assert _image(out['photo']).shape == _image(out['image']).shape == (32, 32, 3)
  assert len(out['latent']) == 16 and 0 < out['rmse'] < 255


def _npy(array):
  buf = io.BytesIO()
  np.save(buf, array)
  buf.seek(0)
  return buf


def _json(text):
  return dict(data=text, content_type='application/json')


def _npz():
  buf = io.BytesIO()
  np.savez(buf, z=np.zeros(16))
  buf.seek(0)
  return buf


def _npy_header(shape):
  """A .npy header for float32 `shape` followed by 8 bytes of data."""
  buf = io.BytesIO()
  np.lib.format.write_array_header_1_0(buf, dict(descr='<f4', fortran_order=False, shape=shape))
  buf.write(b'\0' * 8)
  buf.seek(0)
  return buf


def test_bad_requests_get_a_message_and_the_server_goes_on(client):
  c, _, _ = client
  cases = [
    ('/api/render', dict(json=dict(latents=[[0.0] * 5])), 'latent size'),
    ('/api/render', dict(json=dict(latents=[[float('nan')] * 16])), 'NaN'),
    ('/api/render', dict(data='not json'), 'JSON object'),
    ('/api/latents', dict(json=dict(n=10**6)), 'n must be in'),
    ('/api/latents', dict(json=dict(truncation='x')), 'must be a finite number'),
    ('/api/slerp', dict(json=dict(z1=[0.0] * 16, z2=[1.0] * 16, t=2)), 't must be in'),
    ('/api/latent', dict(data=dict(file=(_npy(np.zeros(7)), 'z.npy'))), 'latent size'),
    ('/api/latent', dict(data=dict(file=(io.BytesIO(b'junk'), 'z.npy'))), 'not a .npy'),
    ('/api/project', dict(data=dict(file=(io.BytesIO(b'junk'), 'a.jpg'))), 'not an image'),
    ('/api/project', dict(data={}), 'No file was uploaded'),
    ('/api/latent', dict(data=dict(file=(io.BytesIO(b''), 'z.npy'))), 'No file was uploaded'),
    # Numbers JSON allows and Python reads, but no request means.
    ('/api/latents', _json('{"seed": 1e400}'), 'seed must be a finite'),
    ('/api/latents', _json('{"truncation": NaN}'), 'truncation must be a'),
    (
      '/api/slerp',
      _json('{"z1": %s, "z2": %s, "t": NaN}' % ([0.0] * 16, [1.0] * 16)),
      't must be a finite',
    ),
    ('/api/render', _json('[' * 100_000 + ']' * 100_000), 'JSON object'),
    ('/api/render', _json('{"latents": %s}' % ('[' * 500 + ']' * 500)), 'latents must be'),
    # Latent files that are not one array of this run's size.
    ('/api/latent', dict(data=dict(file=(_npz(), 'z.npz'))), '.npz archive'),
    (
      '/api/latent',
      dict(data=dict(file=(_npy_header((10**12,)), 'z.npy'))),
      'shape [1000000000000]',
    ),
    ('/api/latent', dict(data=dict(file=(_npy_header((16,)), 'z.npy'))), 'damaged'),
    # Moves along a direction that is not there, or by no sensible amount.
    ('/api/direction', dict(json=dict(latent=[0.0] * 16, index=4, amounts=[1])), 'index must be'),
    ('/api/direction', dict(json=dict(latent=[0.0] * 16, index=0.5, amounts=[1])), 'whole'),
    ('/api/direction', dict(json=dict(latent=[0.0] * 16, amounts=[1])), 'whole number'),
    ('/api/direction', dict(json=dict(latent=[0.0] * 3, index=0, amounts=[1])), 'latent size'),
    ('/api/direction', dict(json=dict(latent=[0.0] * 16, index=0, amounts=[])), '1-256 numbers'),
    ('/api/direction', dict(json=dict(latent=[0.0] * 16, index=0, amounts=5)), '1-256 numbers'),
    ('/api/direction', dict(json=dict(latent=[0.0] * 16, index=0, amounts=[11])), 'in [-10'),
    ('/api/direction', dict(json=dict(latent=[0.0] * 16, index=0, amounts=['x'])), 'finite'),
    ('/api/direction', dict(json=dict(latent=[0.0] * 16, index=0, amounts=[None])), 'not null'),
    ('/api/direction', dict(json=dict(latent=[0.0] * 16, index=0, amounts=[1] * 300)), '1-256'),
  ]
  for path, kwargs, message in cases:
    response = c.post(path, **kwargs)
    assert response.status_code == 400, (path, message)
    assert message in response.get_json()['error'], response.get_json()
  big = c.post('/api/project', data=dict(file=(io.BytesIO(b'\0' * (21 * 2**20)), 'big.jpg')))
  assert big.status_code == 413 and 'MB limit' in big.get_json()['error']
  assert c.get('/api/info').status_code == 200  # still serving


def test_pages_of_other_sites_are_refused(client):
  c, _, _ = client
  # A DNS rebinding page reaches the server under its own domain name.
  for host in ('evil.example', 'evil.example:8000', 'localhost.evil.example'):
    r = c.get('/api/info', headers={'Host': host})
    assert r.status_code == 403 and 'refused' in r.get_json()['error'], host
    assert c.get('/', headers={'Host': host}).status_code == 403
  for host in (
    'localhost:8000',
    '127.0.0.1:8000',
    '[::1]:8000',
    '192.168.1.5',
    socket.gethostname(),
  ):
    assert c.get('/api/info', headers={'Host': host}).status_code == 200, host
  with open(FACE, 'rb') as f:
    face = f.read()
  # Browsers send a cross-site form POST without asking first.
  for origin in ('http://evil.example', 'null', 'http://localhost:9999'):
    r = c.post(
      '/api/project', headers={'Origin': origin}, data=dict(file=(io.BytesIO(face), 'a.jpg'))
    )
    assert r.status_code == 403 and 'refused' in r.get_json()['error']
  same = c.post('/api/latents', headers={'Origin': 'http://localhost'}, json=dict(n=1))
  assert same.status_code == 200


def test_a_photo_during_a_projection_is_busy_and_sliders_still_move(client, monkeypatch):
  c, config, _ = client
  started, release = threading.Event(), threading.Event()
  project = explorer_app.projection.project

  def held_project(*args, **kwargs):
    started.set()
    release.wait(60)
    return project(*args, **kwargs)

  monkeypatch.setattr(explorer_app.projection, 'project', held_project)
  with open(FACE, 'rb') as f:
    face = f.read()
  first = {}
  thread = threading.Thread(
    target=lambda: first.update(
      r=c.application.test_client().post(
        '/api/project', data=dict(file=(io.BytesIO(face), 'a.jpg'))
      )
    )
  )
  thread.start()
  try:
    assert started.wait(60)
    second = c.post('/api/project', data=dict(file=(io.BytesIO(face), 'b.jpg')))
    assert second.status_code == 503 and 'busy' in second.get_json()['error']
    # A slider move is not queued behind the projection.
    moved = c.post('/api/render', json=dict(latents=[[0.5] * 16]))
    assert moved.status_code == 200
  finally:
    release.set()
    thread.join(120)
  assert first['r'].status_code == 200 and 'rmse' in first['r'].get_json()
  again = c.post('/api/project', data=dict(file=(io.BytesIO(face), 'c.jpg')))
  assert again.status_code == 200  # the slot was given back


def test_idle_connections_are_closed(client):
  c, _, _ = client
  server = make_server(c.application, '127.0.0.1', 0, idle_timeout=0.5)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    with socket.create_connection(('127.0.0.1', server.port), timeout=20) as s:
      start = time.monotonic()
      assert s.recv(1024) == b''  # closed by the server, nothing sent
      assert time.monotonic() - start < 10
    with urllib.request.urlopen(f'http://127.0.0.1:{server.port}/api/info', timeout=20) as r:
      assert json.load(r)['latent_dim'] == 16
  finally:
    server.shutdown()
    thread.join(20)


_UPLOAD_MEMORY = """
import io, json, resource, sys, threading
from explorer.app import create_app
from training import checkpoints
config, _, g = checkpoints.load_generator(sys.argv[1])
web = create_app(g, config, project_steps=2)
uploads = [open(path, 'rb').read() for path in sys.argv[2:]]
web.test_client().post('/api/project', data=dict(
    file=(io.BytesIO(uploads[-1]), 'warm.jpg')))  # traced and warm
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
replies = []
def post(data):
  r = web.test_client().post('/api/project',
                             data=dict(file=(io.BytesIO(data), 'x')))
  replies.append((r.status_code, r.get_json().get('error', '')))
threads = [threading.Thread(target=post, args=(d,)) for d in uploads * 4]
for t in threads: t.start()
for t in threads: t.join()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(dict(growth_mb=(after - before) / 1024, replies=replies)))
"""


def test_concurrent_oversized_uploads_stay_within_a_memory_bound(tiny_run, tmp_path):
  # Each file is small; decoded in full, the PNG is 62 megapixels (about
  # 1 GB on its way through RGB and float32) and the JPEG 36.
  png, jpeg = tmp_path / 'bomb.png', tmp_path / 'big.jpg'
  Image.new('1', (7900, 7900)).save(png)
  Image.new('RGB', (6000, 6000), (120, 90, 80)).save(jpeg, quality=90)
  assert png.stat().st_size + jpeg.stat().st_size < 2 * 2**20
  r = subprocess.run(
    [sys.executable, '-c', _UPLOAD_MEMORY, tiny_run, str(png), str(jpeg)],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert r.returncode == 0, r.stderr[-3000:]
  out = json.loads(r.stdout.strip().splitlines()[-1])
  codes = [code for code, _ in out['replies']]
  assert len(codes) == 8 and set(codes) <= {200, 400, 503}, out
  assert 200 in codes or 503 in codes  # the JPEG was decoded, reduced
  for code, error in out['replies']:
    assert code != 400 or 'megapixel limit for this run' in error, error
  assert out['growth_mb'] < 150, out


def _explore(*args):
  return subprocess.run(
    [sys.executable, 'explore.py', *args], cwd=ROOT, capture_output=True, text=True, timeout=120
  )


def test_explore_py_refuses_a_busy_port_and_a_missing_run(tiny_run, tmp_path):
  with socket.socket() as busy:
    busy.bind(('127.0.0.1', 0))
    busy.listen()
    port = busy.getsockname()[1]
    r = _explore(f'--checkpoint={tiny_run}', f'--port={port}')
  assert r.returncode == 1 and 'Traceback' not in r.stderr
  assert f'cannot listen on 127.0.0.1:{port}' in r.stderr.splitlines()[-1]
  r = _explore(f'--checkpoint={tmp_path}')
  assert r.returncode == 1 and 'No checkpoint found' in r.stderr
