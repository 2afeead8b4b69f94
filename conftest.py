# The shared test harness (real Kafka and database for the session): see libs/inbox-testkit (inbox_testkit.plugin).
import os

# The tests' secrets are test values: let every service (in-process or a subprocess) start with them.
os.environ.setdefault("INBOX_ALLOW_DEV_SECRETS", "true")

pytest_plugins = ["inbox_testkit.plugin"]
