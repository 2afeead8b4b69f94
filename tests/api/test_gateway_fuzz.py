"""The gateway against its own OpenAPI document: schemathesis (pinned) generates requests for every
operation, authenticated as an admin of a workspace with a connected number, with bounded examples and a
fixed seed, against the whole stack. No answer may be a 5xx, and every answer must be what the document
says (status, content type, body schema); requests the schema refuses must be refused."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from inbox_testkit.stack import STACK_SECRETS, Stack

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
PASSWORD = "fuzzing-password-1"
# Operations left out, each for a reason: the stream never ends (an SSE response has no end to validate);
# logout and a password change would end the session the run authenticates with (test_auth, test_members
# cover them).
EXCLUDED = ("/api/stream", "/api/auth/logout", "/api/me/password")
# Every answer as documented, schema-invalid requests refused. Not positive_data_acceptance: some refusals
# are about meaning, not shape (an opaque cursor that was never issued, an admin inviting itself, a text
# message without text, a file of a type WhatsApp does not take), which no schema can state.
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
          "negative_data_rejection")


@pytest.mark.timeout(600)
def test_generated_requests_get_no_5xx_and_the_answers_the_schema_states(stack: Stack, tmp_path: Path) -> None:
    gateway = stack.url("gateway")
    workspace = stack.admin("create-workspace", "--name", "Fuzz shop", "--currency", "EUR")["workspace"]["id"]
    email = f"fuzz-{uuid.uuid4().hex[:6]}@fuzz.test"
    stack.admin("create-agent", "--email", email, "--name", "Fuzz", "--password", PASSWORD,
                "--workspace", workspace, "--role", "admin")
    token = httpx.post(f"{gateway}/api/auth/login", json={"email": email, "password": PASSWORD},
                       timeout=20).json()["token"]
    number, waba = str(uuid.uuid4().int % 10**14), str(uuid.uuid4().int % 10**14)
    stack.register_number(number, waba, name="Fuzz shop")
    connected = httpx.post(
        f"{gateway}/api/admin/numbers", timeout=20, headers={"Authorization": f"Bearer {token}"},
        json={"workspace_id": workspace, "phone_number_id": number, "display_phone_number": number, "name": "Fuzz",
              "waba_id": waba, "access_token": STACK_SECRETS["SANDBOX_ACCESS_TOKEN"]})
    assert connected.status_code == 201, connected.text

    # One worker: CPython 3.11's AST validator keeps its recursion depth in shared state, and hypothesis parses
    # lambda sources while schemathesis' workers build strategies in threads, which now and then failed the run
    # with "SystemError: AST constructor recursion depth mismatch" (seen in CI).
    args = [str(SCHEMATHESIS), "run", f"{gateway}/schema/openapi.json", "--header", f"Authorization: Bearer {token}",
            "--checks", CHECKS, "--max-examples", "10", "--seed", "20261201", "--generation-deterministic",
            "--phases", "examples,coverage,fuzzing", "--workers", "1", "--request-timeout", "20",
            "--max-time", "150", "--no-color", "--report", "junit", "--report-dir", str(tmp_path),
            *(arg for path in EXCLUDED for arg in ("--exclude-path", path))]
    started = time.monotonic()
    output = tmp_path / "schemathesis.txt"
    with output.open("w") as out:
        done = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, text=True, timeout=400,
                              env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
    text = output.read_text()
    print(f"\nschemathesis: {time.monotonic() - started:.0f} s, exit {done.returncode}\n{text[-6000:]}")
    assert done.returncode == 0, text[-20000:]
