"""Batch scoring: score files with a version, in bounded memory, with a record of each job.

``sources`` reads the input in record batches, ``scorer`` scores one batch, ``engine``
is the interface an engine implements and ``local`` the engine on this machine,
``sinks`` writes the output under a temporary name until the job succeeds,
``predictions`` logs batch predictions to an endpoint's log and ``jobs`` keeps the
records. The SDK's ``yard.batch`` (``client/batch.py``) puts them together.
"""
