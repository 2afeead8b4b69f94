"""Where things are in the checkout: the repository root, the local servers' folder, the shared fixtures."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[4]
LOCAL = REPO_ROOT / ".local"
KAFKA_LIBS = LOCAL / "kafka" / "libs"
FERRETDB_BIN = LOCAL / "bin" / "ferretdb"
DEPLOY_LOCAL = REPO_ROOT / "deploy" / "local"
# Meta's own webhook examples, the project's fixtures (their README says where each comes from).
META_WEBHOOK_SAMPLES = REPO_ROOT / "tests" / "fixtures" / "meta-webhooks"
