"""template_sends.py: an approved template's parameters checked and built into Meta's components."""

from __future__ import annotations

import pytest

from inbox_conversations import template_sends
from inbox_core.errors import ValidationFailed

POSITIONAL = [
    {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
    {"type": "BODY", "text": "Hi {{1}}, your order {{2}} ships {{3}}. Thanks {{1}}!"},
    {"type": "FOOTER", "text": "Reply STOP to opt out"},
    {"type": "BUTTONS", "buttons": [
        {"type": "QUICK_REPLY", "text": "OK"},
        {"type": "URL", "text": "Track", "url": "https://shop.example/track/{{1}}"},
        {"type": "COPY_CODE", "example": "SAVE10"},
    ]},
]
NAMED = [
    {"type": "HEADER", "format": "IMAGE"},
    {"type": "BODY", "text": "Hello {{first_name}}, use {{discount_code}}"},
]


def test_positional_template_builds_meta_components() -> None:
    send = template_sends.build_template_send(POSITIONAL, {
        "header": ["#1001"], "body": ["Ada", "#1001", "today"], "buttons": ["abc123", {"index": 2, "text": "SAVE10"}],
    })
    assert send.components == [
        {"type": "header", "parameters": [{"type": "text", "text": "#1001"}]},
        {"type": "body", "parameters": [{"type": "text", "text": "Ada"}, {"type": "text", "text": "#1001"},
                                        {"type": "text", "text": "today"}]},
        {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": "abc123"}]},
        {"type": "button", "sub_type": "copy_code", "index": "2",
         "parameters": [{"type": "coupon_code", "coupon_code": "SAVE10"}]},
    ]
    assert send.text == "Order #1001\nHi Ada, your order #1001 ships today. Thanks Ada!"


def test_named_template_with_media_header() -> None:
    send = template_sends.build_template_send(NAMED, {
        "header": [{"type": "image", "link": "https://cdn.example/p.jpg"}],
        "body": {"first_name": "Ada", "discount_code": "WELCOME25"},
    })
    assert send.components[0] == {"type": "header", "parameters": [
        {"type": "image", "image": {"link": "https://cdn.example/p.jpg"}}]}
    assert send.components[1]["parameters"] == [
        {"type": "text", "text": "Ada", "parameter_name": "first_name"},
        {"type": "text", "text": "WELCOME25", "parameter_name": "discount_code"},
    ]
    as_list = template_sends.build_template_send(NAMED, {
        "header": [{"type": "image", "id": "1234"}],
        "body": [{"name": "discount_code", "text": "X"}, {"parameter_name": "first_name", "text": "Y"}],
    })
    assert as_list.text == "Hello Y, use X"


@pytest.mark.parametrize(("components", "params", "problem"), [
    (POSITIONAL, {"header": ["a"], "body": ["Ada", "#1"], "buttons": ["x", "y"]}, "body: expects 3 values, got 2"),
    (POSITIONAL, {"header": ["a"], "body": [{"name": "x", "text": "1"}] * 3, "buttons": ["x", "y"]},
     "positional variables take values without names"),
    (POSITIONAL, {"header": ["a"], "body": ["a", "b", "c"], "buttons": ["x"]}, "buttons: expects 2 values"),
    (POSITIONAL, {"header": ["a"], "body": ["a", "", "c"], "buttons": ["x", "y"]}, "body: empty value for 2"),
    (POSITIONAL, {"body": ["a", "b", "c"], "buttons": ["x", "y"]}, "header: expects a list of 1"),
    (NAMED, {"header": [{"type": "image", "link": "l"}], "body": ["Ada", "X"]}, "named variables take"),
    (NAMED, {"header": [{"type": "image", "link": "l"}], "body": {"first_name": "Ada"}}, "body: missing discount_code"),
    (NAMED, {"header": [{"type": "image", "link": "l"}], "body": {"first_name": "A", "discount_code": "B", "x": "C"}},
     "body: unknown x"),
    (NAMED, {"body": {"first_name": "A", "discount_code": "B"}}, "image header needs one media parameter"),
    (NAMED, {"header": [{"type": "video", "link": "l"}], "body": {"first_name": "A", "discount_code": "B"}},
     "header: expects image, got video"),
    (NAMED, {"header": [{"type": "image"}], "body": {"first_name": "A", "discount_code": "B"}},
     "needs a link or a media id"),
    ([{"type": "BODY", "text": "No variables"}], {"body": ["extra"]}, "takes no parameters"),
    ([{"type": "BODY", "text": "Hi"}], {"footer": ["x"]}, "unknown sections: footer"),
    ([{"type": "BODY", "text": "Hi"}], {"header": ["x"]}, "the template has no header"),
])
def test_template_params_that_do_not_fit_are_refused(components: list[dict[str, object]],
                                                     params: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        template_sends.build_template_send(components, params)
    assert any(problem in p for p in refused.value.details["problems"]), refused.value.details
    assert refused.value.code == "validation_failed"


def test_template_without_variables_needs_no_params() -> None:
    send = template_sends.build_template_send([{"type": "BODY", "text": "Hello world"}], {})
    assert send.components == [] and send.text == "Hello world"


# --- ids and paging ------------------------------------------------------------------------------------


def test_template_parameters_are_capped_by_text_and_in_all() -> None:
    template_sends.check_template_params_size({"body": ["a" * 1024, {"name": "n", "text": "b" * 1024}]})
    for too_large in ({"body": ["a" * 1025]}, {"body": [{"name": "n", "text": "b" * 1025}]},
                      {"body": ["c" * 1000] * 17}):
        with pytest.raises(ValidationFailed):
            template_sends.check_template_params_size(too_large)


# --- the team's status of a conversation -----------------------------------------------------------------
