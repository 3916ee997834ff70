"""``python -m durable_azstorage.cli``: the same as the ``durable-azstorage`` command."""

from . import main

main()
