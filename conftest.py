# The shared test harness (real Kafka and database for the session): see inbox_core/testing.py.
pytest_plugins = ["inbox_core.testing"]
