"""`python -m experiments.cli ...` is the `kshot` command (for a checkout without the console script)."""

import sys

from experiments.cli import console_main

sys.exit(console_main())
