"""Seeds the demo workspace of `make dev` through the real APIs, and prints the address and logins.

- the workspace and its two agents with the gateway's admin CLI (`python -m inbox_gateway admin ...`);
- the sandbox's two numbers connected with the gateway's admin API (which hands them to ingest);
- customers writing in through the sandbox's simulator (every message type, signed webhooks into
  ingest), one of them more than 24 hours ago so that its window is closed;
- replies, notes (one mentioning Sara), an assignment, orders at different stages, a resolved and a snoozed conversation
  through the gateway's API;
- canned replies (type "/" in the composer), with the customer's and the agent's names filled in.

Running it again changes nothing that exists (the workspace is found by name). With `--live`, it then
keeps sending customer messages every few seconds, so the list stays alive (Ctrl-C stops it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
WORKSPACE = "Demo Shop"
PASSWORD = "demo-password"  # noqa: S105 - the documented demo login of `make dev`
AGENTS = [("admin@demo.local", "Sara Admin", "admin"), ("agent@demo.local", "Alex Agent", "agent")]
NUMBERS = [
    {"phone_number_id": "106540352242922", "display_phone_number": "15550783881", "waba_id": "102290129340398",
     "name": "Demo Shop EU"},
    {"phone_number_id": "117650463353033", "display_phone_number": "15550783882", "waba_id": "213301230451409",
     "name": "Demo Shop US"},
]


def env() -> dict[str, str]:
    from inbox_testkit.devinfra import dev_env

    return dev_env()


def admin_cli(*args: str, stdin: str | None = None) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-m", "inbox_gateway", "admin", *args], env=env(), cwd=REPO,
                            input=stdin, capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise SystemExit(f"admin {' '.join(args)} failed:\n{result.stderr or result.stdout}")
    out: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


def find_workspace() -> dict[str, Any] | None:
    for ws in admin_cli("list-workspaces")["workspaces"]:
        if ws.get("name") == WORKSPACE:
            return dict(ws)
    return None


class Api:
    def __init__(self, base: str, email: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=30)
        token = self.call("POST", "/api/auth/login", {"email": email, "password": PASSWORD})["token"]
        self.http.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, body: dict[str, Any] | None = None,
             params: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Any:
        response = self.http.request(method, path, json=body, params=params, headers=headers)
        if response.status_code >= 400:
            raise SystemExit(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None


def simulate(sandbox: str, kind: str, **fields: Any) -> dict[str, Any]:
    response = httpx.post(f"{sandbox}/sandbox/simulate/{kind}", json=fields, timeout=30)
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    if answer.get("status_code") != 200:
        raise SystemExit(f"ingest answered {answer.get('status_code')} to a simulated {kind}: {answer}")
    return answer


def conversation_of(api: Api, phone: str, deadline_s: float = 30) -> dict[str, Any]:
    """The conversation of a customer, once the inbox has it (events travel through Kafka)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        items = api.call("GET", "/api/conversations", params={"q": phone, "limit": 5})["items"]
        if items:
            return dict(items[0])
        time.sleep(0.3)
    raise SystemExit(f"the conversation of {phone} did not appear")


EU, US = NUMBERS[0]["phone_number_id"], NUMBERS[1]["phone_number_id"]


def customers_write_in(sandbox: str) -> None:
    old = int((datetime.now(UTC) - timedelta(hours=30)).timestamp())
    sheena = {"phone_number_id": EU, "wa_id": "4915112345001", "name": "Sheena Nguyen"}
    first = simulate(sandbox, "text", **sheena, body="Hi! Is the blue linen dress still in stock in size M?")
    simulate(sandbox, "image", **sheena, caption="This one, from your Instagram")
    simulate(sandbox, "audio", **sheena, voice=True)
    simulate(sandbox, "text", **sheena, body="And can you ship to Hamburg by Friday?",
             context={"message_id": first["wamid"]})
    luca = {"phone_number_id": EU, "wa_id": "393471234002", "name": "Luca Rossi"}
    simulate(sandbox, "referral", **luca, body="I saw your ad for the summer sale")
    simulate(sandbox, "order", **luca)
    simulate(sandbox, "list_reply", **luca)
    simulate(sandbox, "location", **luca, latitude=45.4642, longitude=9.19, location_name="Ufficio",
             address="Piazza del Duomo, Milano")
    amira = {"phone_number_id": EU, "wa_id": "33612345003", "name": "Amira Haddad"}
    simulate(sandbox, "document", **amira, filename="return-form.pdf", caption="My return form")
    simulate(sandbox, "sticker", **amira)
    simulate(sandbox, "button", **amira)
    simulate(sandbox, "contacts", **amira)
    old_customer = {"phone_number_id": EU, "wa_id": "34612345004", "name": "Pablo Ortega"}
    simulate(sandbox, "text", **old_customer, body="Thanks, the shoes arrived!", timestamp=old)
    jonas = {"phone_number_id": US, "wa_id": "16505551005", "name": "Jonas Weber"}
    simulate(sandbox, "text", **jonas, body="Do you have a store in New York?")
    simulate(sandbox, "video", **jonas, caption="The zipper is broken")
    simulate(sandbox, "button_reply", **jonas)
    simulate(sandbox, "unsupported", **jonas)
    simulate(sandbox, "text", phone_number_id=US, wa_id="16505551006", name="Mia Chen", body="Hello?")


def team_works(sara: Api, alex: Api, agents: dict[str, str]) -> None:
    sheena = conversation_of(sara, "4915112345001")
    sara.call("POST", f"/api/conversations/{sheena['id']}/messages",
              {"type": "text", "text": "Hi Sheena! Yes, size M is in stock. Shall I reserve one for you?"})
    order = sara.call("POST", "/api/orders", {
        "conversation_id": sheena["id"],
        "items": [{"sku": "DRS-BLU-M", "name": "Blue linen dress (M)", "quantity": 1, "unit_price": "89.90"}],
        "shipping": {"name": "Sheena Nguyen", "line1": "Jungfernstieg 1", "city": "Hamburg",
                     "postal_code": "20095", "country": "DE"},
    }, headers={"Idempotency-Key": "demo-order-sheena"})["order"]
    sara.call("POST", f"/api/orders/{order['id']}/stage", {"stage": "confirmed"})

    luca = conversation_of(sara, "393471234002")
    alex.call("POST", f"/api/conversations/{luca['id']}/notes",
              {"text": "Asked about the summer sale; offer the 10% code if he orders two."})
    alex.call("POST", f"/api/conversations/{luca['id']}/notes",
              {"text": "@Sara Admin can we give Luca free shipping on the second pair?",
               "mentions": [agents["admin@demo.local"]]})
    sara.call("POST", f"/api/conversations/{luca['id']}/assign", {"agent_id": agents["agent@demo.local"]})
    luca_order = alex.call("POST", "/api/orders", {
        "conversation_id": luca["id"],
        "items": [{"sku": "SNK-WHT-42", "name": "White sneakers (42)", "quantity": 2, "unit_price": "64.50"}],
    }, headers={"Idempotency-Key": "demo-order-luca"})["order"]
    for stage in ("confirmed", "shipped"):
        alex.call("POST", f"/api/orders/{luca_order['id']}/stage", {"stage": stage})

    amira = conversation_of(sara, "33612345003")
    amira_order = sara.call("POST", "/api/orders", {
        "conversation_id": amira["id"],
        "items": [{"sku": "BAG-TAN", "name": "Tan leather bag", "quantity": 1, "unit_price": "149.00"}],
    }, headers={"Idempotency-Key": "demo-order-amira"})["order"]
    for stage in ("confirmed", "shipped", "delivered", "returned"):
        sara.call("POST", f"/api/orders/{amira_order['id']}/stage", {"stage": stage})
    sara.call("POST", f"/api/conversations/{amira['id']}/read")

    # Pablo's thanks need no answer: resolved. Jonas asked about a store: snoozed until the morning.
    pablo = conversation_of(sara, "34612345004")
    sara.call("POST", f"/api/conversations/{pablo['id']}/status", {"status": "resolved"})
    jonas = conversation_of(sara, "16505551005")
    tomorrow = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(days=1)
    alex.call("POST", f"/api/conversations/{jonas['id']}/status", {"status": "snoozed", "until": tomorrow.isoformat()})


CANNED_REPLIES = [
    ("hello", "Greeting", "Hi {{customer.first_name}}! Thanks for writing to Demo Shop. How can I help?"),
    ("shipping", "Shipping times", "Hi {{customer.first_name}}, orders ship within 24 hours; delivery takes 2-4 "
                                   "working days in the EU and 5-7 in the US."),
    ("returns", "Returns", "You can return anything within 30 days, free of charge: reply RETURN and I will send "
                           "you the label. {{agent.name}}, Demo Shop"),
    ("thanks", "Thank you", "Thank you, {{customer.name}}! Have a lovely day. {{agent.name}}"),
]


def canned_replies(sara: Api, workspace: str) -> None:
    have = {r["shortcut"] for r in sara.call("GET", "/api/replies", params={"workspace": workspace})["items"]}
    for shortcut, title, text in CANNED_REPLIES:
        if shortcut not in have:
            sara.call("POST", "/api/replies", {"workspace_id": workspace, "shortcut": shortcut, "title": title,
                                               "text": text})


def keep_alive(sandbox: str) -> None:
    lines = ["Any news on my order?", "Thank you!", "Can I change the size?", "Where is my parcel?",
             "Do you have this in black?", "Is there a discount code?"]
    names = ["Sheena Nguyen", "Luca Rossi", "Amira Haddad", "Jonas Weber", "Mia Chen", "Noah Smith"]
    print("Sending a customer message every 5 s (Ctrl-C stops).")
    while True:
        i = random.randrange(len(names))
        number = EU if i < 3 else US
        simulate(sandbox, "text", phone_number_id=number, wa_id=f"4915112399{i:03d}", name=names[i],
                 body=random.choice(lines))
        time.sleep(5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--live", action="store_true", help="keep sending customer messages")
    args = parser.parse_args()
    e = env()
    gateway = f"http://127.0.0.1:{e['GATEWAY_HTTP_PORT']}"
    sandbox = f"http://127.0.0.1:{e['SANDBOX_HTTP_PORT']}"
    # Each step finds what an earlier (maybe interrupted) run made, so running it again is safe.
    found = find_workspace() or admin_cli("create-workspace", "--name", WORKSPACE, "--currency", "EUR")["workspace"]
    workspace = str(found["id"])
    agents = {a["email"]: str(a["id"]) for a in found.get("agents", [])}
    for email, name, role in AGENTS:
        if email not in agents:
            created = admin_cli("create-agent", "--email", email, "--name", name, "--workspace", workspace,
                                "--role", role, "--password", PASSWORD)
            agents[email] = str(created["agent"]["id"])
    sara = Api(gateway, AGENTS[0][0])
    for number in NUMBERS:
        sara.call("POST", "/api/admin/numbers", {**number, "workspace_id": workspace,
                                                 "access_token": e.get("SANDBOX_ACCESS_TOKEN", "")})
    if not sara.call("GET", "/api/conversations", params={"limit": 1, "status": "any"})["items"]:
        customers_write_in(sandbox)
        team_works(sara, Api(gateway, AGENTS[1][0]), agents)
        print("Seeded the demo workspace.")
    canned_replies(sara, workspace)
    print(f"\nOpen {gateway} and sign in as admin@demo.local or agent@demo.local, password {PASSWORD}.")
    print(f"The customer simulator (send as a customer): {sandbox}/sandbox/")
    if args.live or os.environ.get("DEMO_LIVE"):
        keep_alive(sandbox)


if __name__ == "__main__":
    main()
