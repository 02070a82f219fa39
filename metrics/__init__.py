"""Sample-quality metrics: SWD (swd.py), FID and KID (fid.py on features from
inception.py), and evaluation of a run directory (evaluation.py)."""
