"""`python -m src.tracking sync SWEEP | dirs SWEEP` (what `make sync` runs): hands over to src/tracking/sync.py."""

import sys

from src.tracking.sync import main

sys.exit(main())
