"""The DTAS storage formats as pure functions: no I/O, no Azure SDK, no aiohttp.

``netjson``/``netvalues`` (Newtonsoft-compatible JSON with the ``$type`` whitelist), ``queue_codec``
(queue ``MessageData``), ``history_codec`` (History rows), ``instance_codec`` (Instances rows),
``table_columns`` (column readers and the 60 KiB rule), ``entity_codec`` (entity messages and
scheduler state), ``names`` (resource names and validation) and ``partitioning`` (FNV-1a, keys).
Import the module you need; this face re-exports nothing so each import says which format it uses.
"""
