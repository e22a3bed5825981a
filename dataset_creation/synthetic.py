"""``python dataset_creation/synthetic.py ...``: the command line of the synthetic raw datasets.

The code is the package ``dataset_creation/synthetic/`` (this file only keeps the documented command
working); ``python dataset_creation/synthetic.py --help`` lists the options.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataset_creation.synthetic import main  # noqa: E402  (after the path set-up above)
from instructcv.cli import run  # noqa: E402

if __name__ == "__main__":
    run(main)
