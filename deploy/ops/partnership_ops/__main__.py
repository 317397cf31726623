"""`python -m partnership_ops ...` is `partnership-ops ...`."""
import sys

from partnership_ops.ops import main

sys.exit(main())
