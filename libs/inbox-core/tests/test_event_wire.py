"""The JSON of whatsapp.events.v1 is read by subscribers outside this repository: reshaping the models (one
MessageContent shared by received and edited messages, the package split into modules) must leave the bytes
on the topic as they were. The expected texts below are what the models wrote before they were reshaped."""

from datetime import UTC, datetime

from inbox_core.events import Event
from inbox_core.events import whatsapp as wa

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

# An inbound image replying to a message, with Meta's error, a contact, the raw object and a field no model
# names (kept: an older consumer loses nothing).
IMAGE_REPLY = {
    "waba_id": "102290129340398", "phone_number_id": "106540352242922", "display_phone_number": "15550783881",
    "field": "messages", "origin": "live", "direction": "in", "wamid": "wamid.HBgL", "wa_id": "16315551181",
    "from": "16315551181", "profile_name": "Kerry", "timestamp": "1700000000",
    "type": "image", "caption": "the parcel", "media": {"media_id": "m1", "mime_type": "image/jpeg", "sha256": "abc"},
    "context": {"message_id": "wamid.prev", "from": "15550783881", "forwarded": True},
    "errors": [{"code": 131051, "title": "Unsupported message type"}],
    "contacts": [{"name": {"formatted_name": "Ana"}}],
    "raw": {"id": "wamid.HBgL", "type": "image"}, "new_field_from_meta": {"kept": True},
}

IMAGE_REPLY_JSON = (
    '{"id":"e1","type":"whatsapp.message.received","occurred_at":"2026-01-02T03:04:05Z","workspace_id":"w'
    's_1","data":{"waba_id":"102290129340398","phone_number_id":"106540352242922","display_phone_number":'
    '"15550783881","field":"messages","origin":"live","direction":"in","wamid":"wamid.HBgL","wa_id":"1631'
    '5551181","user_id":null,"from_user_id":null,"from":"16315551181","to":null,"profile_name":"Kerry","u'
    'sername":null,"group_id":null,"timestamp":"2023-11-14T22:13:20Z","history_status":null,"history":nul'
    'l,"raw":{"id":"wamid.HBgL","type":"image"},"type":"image","text":null,"caption":"the parcel","media"'
    ':{"media_id":"m1","mime_type":"image/jpeg","sha256":"abc","filename":null,"caption":null,"voice":nul'
    'l,"animated":null,"url":null},"location":null,"contacts":[{"name":{"formatted_name":"Ana"}}],"intera'
    'ctive":null,"button":null,"reaction":null,"order":null,"system":null,"referral":null,"unsupported":n'
    'ull,"context":{"message_id":"wamid.prev","from":"15550783881","forwarded":true,"frequently_forwarded'
    '":false,"referred_product":null},"errors":[{"code":131051,"title":"Unsupported message type","messag'
    'e":null,"details":null,"href":null,"error_data":null}],"new_field_from_meta":{"kept":true}}}'
)

TEXT_JSON = (
    '{"id":"e2","type":"whatsapp.message.received","occurred_at":"2026-01-02T03:04:05Z","workspace_id":"w'
    's_1","data":{"waba_id":"","phone_number_id":null,"display_phone_number":null,"field":"messages","ori'
    'gin":"live","direction":"in","wamid":"wamid.T","wa_id":"","user_id":null,"from_user_id":null,"from":'
    'null,"to":null,"profile_name":null,"username":null,"group_id":null,"timestamp":"2026-01-02T03:04:05Z'
    '","history_status":null,"history":null,"raw":{},"type":"text","text":"hello","caption":null,"media":'
    'null,"location":null,"contacts":[],"interactive":null,"button":null,"reaction":null,"order":null,"sy'
    'stem":null,"referral":null,"unsupported":null,"context":null,"errors":[]}}'
)


def test_a_received_message_is_written_to_the_topic_as_before() -> None:
    received = wa.MessageReceived.model_validate(IMAGE_REPLY)
    assert Event.of(received, workspace_id="ws_1", id="e1", occurred_at=AT).to_bytes().decode() == IMAGE_REPLY_JSON


def test_a_text_built_in_code_is_written_as_before_and_reads_back_the_same() -> None:
    text = wa.MessageReceived(wamid="wamid.T", timestamp=AT, type="text", text="hello")
    raw = Event.of(text, workspace_id="ws_1", id="e2", occurred_at=AT).to_bytes()
    assert raw.decode() == TEXT_JSON
    assert Event.from_bytes(raw).payload() == text
