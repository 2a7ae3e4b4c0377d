"""The bundle's entry point: the same `dictate` command as the pip install."""

import multiprocessing
import sys

from dictate.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # long file jobs may run in a child process
    sys.exit(main())
