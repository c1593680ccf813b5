"""The worker: runs the durable jobs of the state database and consumes the change outbox.

``python -m archive_worker --config DATA/run/orthanc --name worker-1``. Any number of workers may
run against one state database; each job runs on one of them at a time, under a lease
(:mod:`archive_state.jobs`). Job kinds are a table (:mod:`archive_worker.kinds`), changes are
dispatched from a table of change type → handlers (:mod:`archive_worker.changes`).
"""
