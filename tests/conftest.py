"Shared settings for the test suite: offline, headless, and where the repository is."
import os
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')  # no test downloads anything
os.environ.setdefault('MPLBACKEND', 'Agg')

ROOT = Path(__file__).resolve().parent.parent
