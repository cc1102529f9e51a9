"""``python3 -m memtrack ARGS...``: the memtrack command line, as the ``memtrack`` binary runs it
(the same exit codes, standard output and standard error)."""

import sys

from ._memtrack import _main


def main() -> int:
    """Runs ``memtrack`` with this process's arguments; returns its exit code."""
    sys.stdout.flush()
    sys.stderr.flush()
    return _main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
