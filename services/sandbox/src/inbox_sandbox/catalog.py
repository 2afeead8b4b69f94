"""The sandbox's built-in message templates, in the shape ``GET /{waba_id}/message_templates`` returns.

Every business account starts with these; more can be added through ``POST /sandbox/templates``.
They cover what ingest and the inbox must handle: a parameterless template, positional body
parameters, the same name in a second language, named parameters, an IMAGE header with a URL button
that takes a parameter, quick replies, and a template that is not approved (listed, but cannot be sent).
"""

from __future__ import annotations

import copy
from typing import Any

_BUILTIN: list[dict[str, Any]] = [
    {
        "name": "hello_world",
        "parameter_format": "POSITIONAL",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Hello World"},
            {
                "type": "BODY",
                "text": "Welcome and congratulations!! This message demonstrates your ability to send a "
                "WhatsApp message notification from the Cloud API, hosted by Meta. Thank you for taking the "
                "time to test with us.",
            },
            {"type": "FOOTER", "text": "WhatsApp Business Platform sample message"},
        ],
        "language": "en_US",
        "status": "APPROVED",
        "category": "UTILITY",
        "id": "1192339204654487",
    },
    {
        "name": "order_update",
        "parameter_format": "POSITIONAL",
        "components": [
            {
                "type": "BODY",
                "text": "Hi {{1}}, your order {{2}} is on its way. We will let you know when it has been delivered.",
                "example": {"body_text": [["Pablo", "#1042"]]},
            },
            {"type": "FOOTER", "text": "Sandbox Store"},
            {
                "type": "BUTTONS",
                "buttons": [
                    {"type": "QUICK_REPLY", "text": "Track my order"},
                    {"type": "QUICK_REPLY", "text": "Talk to an agent"},
                ],
            },
        ],
        "language": "en_US",
        "status": "APPROVED",
        "category": "UTILITY",
        "id": "1302444315765598",
    },
    {
        "name": "order_update",
        "parameter_format": "POSITIONAL",
        "components": [
            {
                "type": "BODY",
                "text": "Hola {{1}}, tu pedido {{2}} está en camino. Te avisaremos cuando haya sido entregado.",
                "example": {"body_text": [["Pablo", "#1042"]]},
            },
            {"type": "FOOTER", "text": "Sandbox Store"},
            {
                "type": "BUTTONS",
                "buttons": [
                    {"type": "QUICK_REPLY", "text": "Seguir mi pedido"},
                    {"type": "QUICK_REPLY", "text": "Hablar con alguien"},
                ],
            },
        ],
        "language": "es",
        "status": "APPROVED",
        "category": "UTILITY",
        "id": "1302444315765599",
    },
    {
        "name": "summer_sale",
        "parameter_format": "NAMED",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Our summer sale is on"},
            {
                "type": "BODY",
                "text": "Hi {{first_name}}! Take {{discount}} off everything with the code {{discount_code}} "
                "until Sunday.",
                "example": {
                    "body_text_named_params": [
                        {"param_name": "first_name", "example": "Pablo"},
                        {"param_name": "discount", "example": "25%"},
                        {"param_name": "discount_code", "example": "WELCOME25"},
                    ]
                },
            },
            {"type": "FOOTER", "text": "Tap Stop promotions to unsubscribe"},
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Stop promotions"}]},
        ],
        "language": "en_US",
        "status": "APPROVED",
        "category": "MARKETING",
        "id": "1413555426876609",
    },
    {
        "name": "new_arrivals",
        "parameter_format": "POSITIONAL",
        "components": [
            {
                "type": "HEADER",
                "format": "IMAGE",
                "example": {"header_handle": ["https://scontent.whatsapp.net/v/t61.29466-34/new-arrivals.jpg"]},
            },
            {
                "type": "BODY",
                "text": "Hi {{1}}, our new {{2}} collection has just landed. Have a look before it sells out!",
                "example": {"body_text": [["Pablo", "spring"]]},
            },
            {"type": "FOOTER", "text": "Sandbox Store"},
            {
                "type": "BUTTONS",
                "buttons": [
                    {
                        "type": "URL",
                        "text": "Shop now",
                        "url": "https://shop.example.com/collections/{{1}}",
                        "example": ["https://shop.example.com/collections/spring"],
                    },
                    {"type": "QUICK_REPLY", "text": "Not interested"},
                ],
            },
        ],
        "language": "en_US",
        "status": "APPROVED",
        "category": "MARKETING",
        "id": "1524666537987710",
    },
    {
        "name": "abandoned_cart",
        "parameter_format": "POSITIONAL",
        "components": [
            {
                "type": "BODY",
                "text": "You left {{1}}{{2}} in your cart.",
                "example": {"body_text": [["2 ", "items"]]},
            },
        ],
        "language": "en",
        "status": "REJECTED",
        "category": "MARKETING",
        "id": "1635777649098821",
    },
]


def builtin_templates() -> list[dict[str, Any]]:
    """A fresh copy, so one business account's changes never leak into another's."""
    return copy.deepcopy(_BUILTIN)
