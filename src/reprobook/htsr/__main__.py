"""``python -m reprobook.htsr FILE``: HT-SR metrics of every layer of a saved model (Martin &
Mahoney, ICML 2019); see :mod:`reprobook.htsr.cli`."""
import sys

from .cli import main

sys.exit(main())
