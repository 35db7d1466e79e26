"""Lets ``python -m alertnet`` run the same command as the ``alertnet`` script."""

from alertnet.cli import main

raise SystemExit(main())
