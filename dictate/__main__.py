import sys

from dictate.cli import main

sys.exit(main())
