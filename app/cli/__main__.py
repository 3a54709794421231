"""``python -m app.cli``: the ``posestyle`` command without the console script."""
from app.cli import main

main()
