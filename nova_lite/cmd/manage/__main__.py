"""``python -m nova_lite.cmd.manage``."""

import sys

from nova_lite.cmd.manage import main

sys.exit(main())
