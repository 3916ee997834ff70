"""The lean data path: the handful of hot storage operations over aiohttp, without azure-core.

A profile of 100 hello-sequences showed the Azure SDK's request pipeline (per-policy async
frames, ``azure.core.rest`` objects, header dicts, generated (de)serialisers and the table
batch's ``email``-based multipart parser) costing several times our own code. These modules
build and parse exactly the requests the engine sends on its hot path — queue put, receive,
delete and update-visibility; table entity-group batch, merge/replace/insert, point read,
partition query, delete; blob get/put/delete — and hand everything else (create/delete/list,
paging by token, properties, leases) to the SDK clients they subclass. Credentials, retries,
timeouts, typed errors and transaction counting behave as on the SDK path; see
docs/performance.md ("Lean data path") for what is and is not covered and why it is
hand-written.
"""

from .services import DATA_PATH_ENV, data_path_from_env, lean_blob_service, lean_queue_service, lean_table_service

__all__ = ["DATA_PATH_ENV", "data_path_from_env", "lean_blob_service", "lean_queue_service", "lean_table_service"]
