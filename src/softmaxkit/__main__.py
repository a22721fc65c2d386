"""``python -m softmaxkit`` runs the command-line interface."""

from softmaxkit.cli import main

raise SystemExit(main())
