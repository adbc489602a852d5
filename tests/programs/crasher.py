"""Say so on stderr and exit with the code given (default 3)."""

import sys

print("crashing now", file=sys.stderr, flush=True)
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
