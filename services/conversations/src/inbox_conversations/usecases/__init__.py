"""The conversations service's use cases: each takes typed values (events, requests), reads what it
needs through the repositories, decides in the pure domain (domain.py, inbound.py, documents.py),
writes, and publishes. The adapters (consumers.py, rpc.py) only translate."""
