"""The explorer page in a real headless Chromium (Playwright), against a tiny run."""

import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FACE = os.path.join(ROOT, 'tests', 'data', 'celeba', 'img_align_celeba', '000001.jpg')
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')

pytestmark = [
  pytest.mark.slow,
  pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium on this machine (.ci/run installs Debian's chromium package)",
  ),
]


@pytest.fixture
def page_url(tiny_run):
  """explore.py serving the tiny run on a free loopback port."""
  proc = subprocess.Popen(
    [sys.executable, 'explore.py', f'--checkpoint={tiny_run}', '--port=0', '--project_steps=20'],
    cwd=ROOT,
    stdout=subprocess.PIPE,
    stderr=subprocess.DEVNULL,
    text=True,
  )
  try:
    line = proc.stdout.readline()  # printed once the server listens
    match = re.search(r'http://127\.0\.0\.1:\d+/', line)
    assert match, line
    yield match.group(0)
  finally:
    proc.terminate()
    proc.wait(timeout=30)


def test_the_page_renders_moves_and_projects(page_url, tmp_path):
  sync_api = pytest.importorskip('playwright.sync_api')
  with sync_api.sync_playwright() as p:
    browser = p.chromium.launch(executable_path=CHROMIUM, args=['--no-sandbox'])
    page = browser.new_page()
    page.goto(page_url)
    # Every grid image really decoded.
    page.wait_for_function(
      "document.querySelectorAll('#grid img').length === 16 && "
      "[...document.querySelectorAll('#grid img')]"
      '.every((i) => i.complete && i.naturalWidth > 0)'
    )
    assert page.eval_on_selector('#current', 'i => i.naturalWidth') == 32
    # "new faces" moves to the next seed: other faces.
    first = page.get_attribute('#grid img >> nth=0', 'src')
    page.click('#new')
    page.wait_for_function("first => document.querySelector('#grid img').src !== first", arg=first)
    assert page.input_value('#seed') == '1'
    # A latent-dimension slider changes the current image.
    before = page.get_attribute('#current', 'src')
    slider = page.locator('#dims input[type=range]').first
    slider.evaluate(
      "s => { s.value = Number(s.value) > 0 ? -2.5 : 2.5; s.dispatchEvent(new Event('input')); }"
    )
    page.wait_for_function(
      "before => document.getElementById('current').src !== before", arg=before
    )
    # An edit-direction slider, with its two previews drawn, changes it too.
    page.wait_for_function(
      "[...document.querySelectorAll('#directions img')]"
      '.every((i) => i.complete && i.naturalWidth === 32)'
    )
    assert page.locator('#directions input[type=range]').count() == 10
    before = page.get_attribute('#current', 'src')
    page.locator('#directions input[type=range]').nth(0).evaluate(
      "s => { s.value = 2; s.dispatchEvent(new Event('input')); }"
    )
    page.wait_for_function(
      "before => document.getElementById('current').src !== before", arg=before
    )
    # Blending: pick a second face, move the slerp slider.
    page.locator('#grid img').nth(1).click()
    before = page.get_attribute('#current', 'src')
    page.locator('#t').evaluate("s => { s.value = 0.5; s.dispatchEvent(new Event('input')); }")
    page.wait_for_function(
      "before => document.getElementById('current').src !== before", arg=before
    )
    # An uploaded photo comes back reconstructed; a bad one gets a message.
    page.set_input_files('#photo', FACE)
    page.wait_for_function(
      "document.getElementById('message').textContent.startsWith('Reconstructed')", timeout=60000
    )
    assert page.eval_on_selector('#photo_out', 'i => i.naturalWidth') == 32
    bad = tmp_path / 'notes.jpg'
    bad.write_text('not a photo')
    page.set_input_files('#photo', str(bad))
    page.wait_for_function(
      "document.getElementById('message').textContent.includes('not an image')"
    )
    # The direction previews the projection started finish later; they must
    # not wipe the message (a CI run once missed it that way).
    page.wait_for_timeout(2000)
    assert 'not an image' in page.text_content('#message')
    page.screenshot(path=str(tmp_path / 'explorer.png'))
    browser.close()
  assert os.path.getsize(tmp_path / 'explorer.png') > 1000
