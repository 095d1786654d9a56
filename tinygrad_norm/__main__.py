"""`python -m tinygrad_norm ...` is the `tinygrad-norm` command."""
import sys

from .cli import main

sys.exit(main())
