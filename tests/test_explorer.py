"""The explorer: its API on a tiny run, bad input, and explore.py's own errors."""

import base64
import io
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from explorer.app import create_app
from models import latents, streams
from training import checkpoints

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FACE = os.path.join(ROOT, 'tests', 'data', 'celeba', 'img_align_celeba',
                    '000001.jpg')


@pytest.fixture(scope='module')
def client(tiny_run):
  config, _, generator = checkpoints.load_generator(tiny_run)
  web = create_app(generator, config, 'tiny', project_steps=20)
  return web.test_client(), config, generator


def _image(data_url):
  assert data_url.startswith('data:image/png;base64,')
  return np.asarray(Image.open(io.BytesIO(base64.b64decode(
      data_url.split(',', 1)[1]))))


def test_the_page_and_info(client):
  c, config, _ = client
  page = c.get('/')
  assert page.status_code == 200 and b'facegan explorer' in page.data
  assert c.get('/api/info').get_json() == dict(
      latent_dim=16, latent_dist='normal', height=32, width=32, run='tiny')


def test_faces_are_generate_py_s_grid_and_render_as_g_does(client):
  c, config, generator = client
  out = c.post('/api/latents', json=dict(seed=5, n=4)).get_json()
  z = latents.sample_latents(config, 4, 5, streams.GRID)
  np.testing.assert_allclose(out['latents'], z, rtol=1e-6)
  images = [_image(u) for u in out['images']]
  np.testing.assert_allclose(np.stack(images), latents.render(generator, z),
                             atol=1)
  truncated = c.post('/api/latents', json=dict(seed=5, n=4, truncation=0.5))
  assert np.abs(truncated.get_json()['latents']).max() <= 0.5
  # A moved slider: one dimension changed, another image.
  moved = z[0].copy()
  moved[3] += 2.0
  again = c.post('/api/render', json=dict(latents=[z[0].tolist(),
                                                   moved.tolist()])).get_json()
  first, second = (_image(u) for u in again['images'])
  np.testing.assert_array_equal(first, images[0])
  assert not np.array_equal(first, second)


def test_slerp_ends_on_the_picked_faces_and_latents_round_trip(client):
  c, config, _ = client
  z = latents.sample_latents(config, 2, 0, streams.GRID)
  ends = [c.post('/api/slerp', json=dict(z1=z[0].tolist(), z2=z[1].tolist(),
                                         t=t)).get_json() for t in (0, 1)]
  np.testing.assert_allclose(ends[0]['latent'], z[0], rtol=1e-6)
  np.testing.assert_allclose(ends[1]['latent'], z[1], rtol=1e-6)
  npy = c.post('/api/npy', json=dict(latent=z[1].tolist()))
  assert npy.status_code == 200
  np.testing.assert_array_equal(np.load(io.BytesIO(npy.data)), z[1])
  loaded = c.post('/api/latent', data=dict(file=(io.BytesIO(npy.data), 'z.npy')))
  np.testing.assert_array_equal(_image(loaded.get_json()['image']),
                                _image(ends[1]['image']))


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


def test_bad_requests_get_a_message_and_the_server_goes_on(client):
  c, _, _ = client
  cases = [
      ('/api/render', dict(json=dict(latents=[[0.0] * 5])), 'latent size'),
      ('/api/render', dict(json=dict(latents=[[float('nan')] * 16])), 'NaN'),
      ('/api/render', dict(data='not json'), 'JSON object'),
      ('/api/latents', dict(json=dict(n=10**6)), 'n must be in'),
      ('/api/latents', dict(json=dict(truncation='x')), 'must be a number'),
      ('/api/slerp', dict(json=dict(z1=[0.0] * 16, z2=[1.0] * 16, t=2)),
       't must be in'),
      ('/api/latent', dict(data=dict(file=(_npy(np.zeros(7)), 'z.npy'))),
       'latent size'),
      ('/api/latent', dict(data=dict(file=(io.BytesIO(b'junk'), 'z.npy'))),
       'not a .npy'),
      ('/api/project', dict(data=dict(file=(io.BytesIO(b'junk'), 'a.jpg'))),
       'not an image'),
      ('/api/project', dict(data={}), 'No file was uploaded'),
  ]
  for path, kwargs, message in cases:
    response = c.post(path, **kwargs)
    assert response.status_code == 400, (path, message)
    assert message in response.get_json()['error'], response.get_json()
  big = c.post('/api/project', data=dict(
      file=(io.BytesIO(b'\0' * (21 * 2**20)), 'big.jpg')))
  assert big.status_code == 413 and 'MB limit' in big.get_json()['error']
  assert c.get('/api/info').status_code == 200  # still serving


def _explore(*args):
  return subprocess.run([sys.executable, 'explore.py', *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=120)


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
