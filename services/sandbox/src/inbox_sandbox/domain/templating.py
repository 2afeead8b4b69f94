"""Message templates: finding one, checking a send's components against it, rendering its text."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from inbox_sandbox.domain.graph_errors import invalid_parameter, whatsapp_error

_POSITIONAL = re.compile(r"\{\{\s*(\d+)\s*\}\}")
_NAMED = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")


def placeholders(text: str, parameter_format: str) -> list[str]:
    """The distinct parameters a template text expects, in order of first appearance."""
    pattern = _NAMED if parameter_format == "NAMED" else _POSITIONAL
    seen: list[str] = []
    for name in pattern.findall(text or ""):
        if name not in seen:
            seen.append(name)
    return seen


def find_template(templates: Sequence[dict[str, Any]], name: str, language: str) -> dict[str, Any] | None:
    for template in templates:
        if template.get("name") == name and template.get("language") == language:
            return template
    return None


def check_template(content: dict[str, Any], templates: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The catalogue entry a template send names, after checking its parameters against it."""
    name = content.get("name")
    language = content.get("language")
    code = language.get("code") if isinstance(language, dict) else None
    if not isinstance(name, str) or not name:
        raise whatsapp_error(100, "The parameter template['name'] is required.",
                             message="(#100) The parameter template['name'] is required.")
    if not isinstance(code, str) or not code:
        raise whatsapp_error(100, "The parameter template['language']['code'] is required.",
                             message="(#100) The parameter template['language']['code'] is required.")
    template = find_template(templates, name, code)
    if template is None or template.get("status") in {"PENDING", "REJECTED", "IN_APPEAL", "DELETED"}:
        raise whatsapp_error(132001, f"template name ({name}) does not exist in {code}")
    if template.get("status") == "PAUSED":
        raise whatsapp_error(132015, f"Template {name} is paused.")
    if template.get("status") == "DISABLED":
        raise whatsapp_error(132016, f"Template {name} is disabled.")
    sent = content.get("components") or []
    if not isinstance(sent, list) or not all(isinstance(c, dict) for c in sent):
        raise invalid_parameter("Param template['components'] must be a list of objects.")
    _check_template_components(template, sent)
    return template


def _check_template_components(template: dict[str, Any], sent: list[dict[str, Any]]) -> None:
    parameter_format = template.get("parameter_format", "POSITIONAL")

    def params_of(kind: str, index: int | None = None) -> list[Any]:
        for component in sent:
            if str(component.get("type", "")).lower() != kind:
                continue
            if index is not None and str(component.get("index")) != str(index):
                continue
            params = component.get("parameters") or []
            return params if isinstance(params, list) else []
        return []

    for component in template.get("components", []):
        kind = str(component.get("type", "")).lower()
        if kind == "header" and component.get("format", "TEXT") != "TEXT":
            expected_format = str(component["format"])
            params = params_of("header")
            got = str(params[0].get("type", "UNKNOWN")).upper() if params and isinstance(params[0], dict) else "UNKNOWN"
            if got != expected_format:
                raise whatsapp_error(132012, f"header: Format mismatch, expected {expected_format}, received {got}")
            media = params[0].get(expected_format.lower())
            if not isinstance(media, dict) or (media.get("id") is None and media.get("link") is None):
                raise whatsapp_error(132012, f"header: {expected_format.lower()} must have an id or a link")
        elif kind in {"header", "body"}:
            _check_text_params(kind, placeholders(component.get("text", ""), parameter_format), params_of(kind),
                               parameter_format)
        elif kind == "buttons":
            for index, button in enumerate(component.get("buttons", [])):
                if button.get("type") == "URL":
                    expected = placeholders(button.get("url", ""), "POSITIONAL")
                    _check_text_params(f"button at index {index}", expected, params_of("button", index),
                                       "POSITIONAL")


def _check_text_params(where: str, expected: list[str], params: list[Any], parameter_format: str) -> None:
    if len(params) != len(expected):
        raise whatsapp_error(
            132000, f"{where}: number of localizable_params ({len(params)}) does not match the expected number "
            f"of params ({len(expected)})")
    for param in params:
        if not isinstance(param, dict):
            raise invalid_parameter(f"{where}: every parameter must be an object")
    if parameter_format == "NAMED":
        names = sorted(str(p.get("parameter_name")) for p in params)
        if names != sorted(expected):
            raise whatsapp_error(
                132000, f"{where}: parameter names ({', '.join(names)}) do not match the expected names "
                f"({', '.join(sorted(expected))})")


def render_template(template: dict[str, Any], sent: list[dict[str, Any]]) -> str:
    """What the customer reads: the template's header and body with the send's parameters filled in."""
    parameter_format = template.get("parameter_format", "POSITIONAL")
    lines: list[str] = []
    for component in template.get("components", []):
        kind = str(component.get("type", "")).lower()
        if kind not in {"header", "body", "footer"} or "text" not in component:
            continue
        text = str(component["text"])
        params = next((c.get("parameters") or [] for c in sent if str(c.get("type", "")).lower() == kind), [])
        values: dict[str, str] = {}
        for position, param in enumerate(params, start=1):
            if isinstance(param, dict):
                key = str(param.get("parameter_name")) if parameter_format == "NAMED" else str(position)
                values[key] = _param_text(param)
        pattern = _NAMED if parameter_format == "NAMED" else _POSITIONAL

        def fill(match: re.Match[str], values: dict[str, str] = values) -> str:
            return values.get(match.group(1), match.group(0))

        lines.append(pattern.sub(fill, text))
    return "\n".join(lines)


def _param_text(param: dict[str, Any]) -> str:
    kind = param.get("type")
    if kind == "currency" and isinstance(param.get("currency"), dict):
        return str(param["currency"].get("fallback_value", ""))
    if kind == "date_time" and isinstance(param.get("date_time"), dict):
        return str(param["date_time"].get("fallback_value", ""))
    return str(param.get("text", param.get(str(kind), "")))
