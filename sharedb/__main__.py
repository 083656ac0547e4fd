import sys

from sharedb.cli import main

sys.exit(main())
