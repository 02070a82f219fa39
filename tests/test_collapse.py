"""The collapse watch: warns once when D wins outright or samples collapse."""

import numpy as np

from training import collapse


def test_d_winning_warns_once_after_patience_intervals():
  watch = collapse.CollapseWatch(d_fake_floor=0.02, patience=3)
  assert watch.observe_d(0.01, 10) is None
  assert watch.observe_d(0.5, 20) is None  # a recovery resets the streak
  assert watch.observe_d(0.01, 30) is None
  assert watch.observe_d(0.015, 40) is None
  assert watch.d_scalars() == {'collapse/d_wins': 0.0}
  warning = watch.observe_d(0.001, 50)
  assert warning and 'step 50' in warning and '--diffaugment' in warning
  assert watch.d_scalars() == {'collapse/d_wins': 1.0}
  assert watch.observe_d(0.001, 60) is None  # once only
  watch.observe_d(0.3, 70)
  assert watch.d_scalars() == {'collapse/d_wins': 0.0}


def test_sample_diversity_separates_varied_from_identical_samples():
  rng = np.random.default_rng(0)
  varied = rng.uniform(-1, 1, (16, 8, 8, 3))
  same = np.repeat(varied[:1], 16, axis=0) + rng.normal(0, 0.01, (16, 8, 8, 3))
  assert collapse.sample_diversity(varied) > 0.5
  assert collapse.sample_diversity(same) < 0.02
  watch = collapse.CollapseWatch()
  # A fresh G's samples are all alike: no warning before they were diverse.
  assert watch.observe_diversity(collapse.sample_diversity(same), 1) is None
  assert watch.observe_diversity(collapse.sample_diversity(varied), 5) is None
  warning = watch.observe_diversity(collapse.sample_diversity(same), 9)
  assert warning and 'lost their diversity' in warning
  assert watch.observe_diversity(0.0, 12) is None  # once only
