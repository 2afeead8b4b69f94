"""Pure rules of sending an approved template (no I/O): which variables its components take, the
parameters an agent gives checked against them and their size, and Meta's components array with the
text the timeline shows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from inbox_core.errors import ValidationFailed

_VARIABLE = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
MEDIA_HEADER_FORMATS = frozenset({"IMAGE", "VIDEO", "DOCUMENT"})


def template_variables(text: str | None) -> list[str]:
    """Distinct variables in order of first appearance: ``["1", "2"]`` or ``["first_name"]``."""
    seen: list[str] = []
    for name in _VARIABLE.findall(text or ""):
        if name not in seen:
            seen.append(name)
    return seen


def _is_positional(variables: Sequence[str]) -> bool:
    return all(v.isdigit() for v in variables)


@dataclass
class TemplateSend:
    """What SendTemplate sends: Meta's components array, and the text to show in the timeline."""

    components: list[dict[str, Any]]
    text: str
    header_media: dict[str, Any] | None = None


def _component(components: Iterable[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    for comp in components:
        if str(comp.get("type", "")).upper() == kind:
            return comp
    return None


def _text_values(section: str, variables: list[str], given: Any, problems: list[str]) -> list[tuple[str, str]]:
    """Matches ``given`` against the section's variables; ``[(variable, value)]`` in template order.

    Positional variables ({{1}}) take a list of strings (or ``{"text": ...}``); named ones ({{name}})
    take ``[{"name": ..., "text": ...}]`` or ``{name: value}``.
    """
    if not variables:
        if given:
            problems.append(f"{section}: the template takes no parameters here")
        return []
    positional = _is_positional(variables)
    values: dict[str, str] = {}
    if positional:
        if isinstance(given, Mapping) or not isinstance(given, list):
            problems.append(f"{section}: expects a list of {len(variables)} positional values")
            return []
        if any(isinstance(item, Mapping) and ("name" in item or "parameter_name" in item) for item in given):
            problems.append(f"{section}: positional variables take values without names")
            return []
        expected = sorted(variables, key=int)
        if expected != [str(i) for i in range(1, len(expected) + 1)]:
            problems.append(f"{section}: the template's variables are not numbered 1..n")
            return []
        if len(given) != len(expected):
            problems.append(f"{section}: expects {len(expected)} values, got {len(given)}")
            return []
        for index, item in enumerate(given, start=1):
            value = item.get("text") if isinstance(item, Mapping) else item
            values[str(index)] = value if isinstance(value, str) else ""
    else:
        pairs: list[tuple[Any, Any]]
        if isinstance(given, Mapping):
            pairs = list(given.items())
        elif isinstance(given, list) and all(isinstance(item, Mapping) for item in given):
            pairs = [(item.get("name", item.get("parameter_name")), item.get("text")) for item in given]
        else:
            problems.append(f"{section}: named variables take [{{name, text}}] or {{name: value}}")
            return []
        for name, value in pairs:
            if not isinstance(name, str) or not name:
                problems.append(f"{section}: every named value needs a name")
                return []
            values[name] = value if isinstance(value, str) else ""
        missing = [v for v in variables if v not in values]
        unknown = [n for n in values if n not in variables]
        if missing:
            problems.append(f"{section}: missing {', '.join(missing)}")
        if unknown:
            problems.append(f"{section}: unknown {', '.join(unknown)}")
        if missing or unknown:
            return []
    empty = [v for v in variables if not values.get(v, "").strip()]
    if empty:
        problems.append(f"{section}: empty value for {', '.join(empty)}")
        return []
    return [(v, values[v]) for v in variables]


def _text_parameters(pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for name, value in pairs:
        param: dict[str, Any] = {"type": "text", "text": value}
        if not name.isdigit():
            param["parameter_name"] = name
        params.append(param)
    return params


def _render(text: str, pairs: list[tuple[str, str]]) -> str:
    values = dict(pairs)
    return _VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def _as_index(value: Any) -> int | None:
    """A button index given as 1, 1.0 (JSON numbers through protobuf Struct) or "1"."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


# Template parameters: each value's text (Meta's body variables take up to about a thousand characters) and
# all of them as JSON (they are stored with the message and travel in the send command).
MAX_TEMPLATE_PARAM_CHARS = 1024
MAX_TEMPLATE_PARAMS_BYTES = 16 * 1024


def check_template_params_size(params: Mapping[str, Any]) -> None:
    """Raises ValidationFailed (422) when a parameter's text or all of them are over their caps."""
    size = len(json.dumps(params, separators=(",", ":"), ensure_ascii=False, default=str).encode())
    if size > MAX_TEMPLATE_PARAMS_BYTES:
        raise ValidationFailed(f"template parameters have at most {MAX_TEMPLATE_PARAMS_BYTES} bytes in all",
                               {"field": "params", "bytes": size})

    def texts(value: Any) -> list[str]:
        if isinstance(value, str):
            return [value]
        if isinstance(value, Mapping):
            return [t for v in value.values() for t in texts(v)]
        if isinstance(value, list | tuple):
            return [t for v in value for t in texts(v)]
        return []

    longest = max((len(t) for t in texts(params)), default=0)
    if longest > MAX_TEMPLATE_PARAM_CHARS:
        raise ValidationFailed(f"a template parameter has at most {MAX_TEMPLATE_PARAM_CHARS} characters",
                               {"field": "params", "characters": longest})


def build_template_send(components: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> TemplateSend:
    """Checks ``params`` ({header?, body?, buttons?}) against the template's components and builds Meta's
    send components. Raises ValidationFailed (422) listing every problem.

    - header TEXT with a variable: one value; header IMAGE/VIDEO/DOCUMENT: required,
      ``[{"type": "image", "link": ...}]`` or ``{"id": <Meta media id>}``;
    - body: every variable, positional ({{1}}) or named ({{name}}) as the template defines them;
    - buttons: one value per dynamic button (a URL with a variable, COPY_CODE), in button order,
      as strings or ``{"index": i, "text": ...}``.
    """
    problems: list[str] = []
    unknown_sections = sorted(set(params) - {"header", "body", "buttons"})
    if unknown_sections:
        problems.append(f"unknown sections: {', '.join(unknown_sections)}")
    out: list[dict[str, Any]] = []
    shown: list[str] = []
    header_media: dict[str, Any] | None = None

    header = _component(components, "HEADER")
    given_header = params.get("header")
    if header is not None:
        fmt = str(header.get("format", "TEXT")).upper()
        if fmt in MEDIA_HEADER_FORMATS:
            kind = fmt.lower()
            item = given_header[0] if isinstance(given_header, list) and len(given_header) == 1 else None
            if not isinstance(item, Mapping):
                problems.append(f"header: the template's {kind} header needs one media parameter")
            elif item.get("type", kind) != kind:
                problems.append(f"header: expects {kind}, got {item.get('type')}")
            elif not (isinstance(item.get("link"), str) and item["link"]) and not (
                    isinstance(item.get("id"), str) and item["id"]):
                problems.append(f"header: the {kind} needs a link or a media id")
            else:
                media = {k: item[k] for k in ("link", "id", "filename") if isinstance(item.get(k), str) and item[k]}
                header_media = {"type": kind, **media}
                out.append({"type": "header", "parameters": [{"type": kind, kind: media}]})
        elif fmt == "TEXT":
            text = str(header.get("text", ""))
            pairs = _text_values("header", template_variables(text), given_header, problems)
            if pairs:
                out.append({"type": "header", "parameters": _text_parameters(pairs)})
            if text:
                shown.append(_render(text, pairs))
        elif given_header:
            problems.append(f"header: a {fmt} header takes no parameters")
    elif given_header:
        problems.append("header: the template has no header")

    body = _component(components, "BODY")
    body_text = str(body.get("text", "")) if body is not None else ""
    pairs = _text_values("body", template_variables(body_text), params.get("body"), problems)
    if pairs:
        out.append({"type": "body", "parameters": _text_parameters(pairs)})
    if body_text:
        shown.append(_render(body_text, pairs))

    buttons_comp = _component(components, "BUTTONS")
    buttons = list(buttons_comp.get("buttons", [])) if buttons_comp is not None else []
    dynamic: list[tuple[int, str]] = []  # (button index, sub_type)
    for index, button in enumerate(buttons):
        kind = str(button.get("type", "")).upper()
        if kind == "URL" and template_variables(str(button.get("url", ""))):
            dynamic.append((index, "url"))
        elif kind == "COPY_CODE":
            dynamic.append((index, "copy_code"))
    given_buttons = params.get("buttons") or []
    if not isinstance(given_buttons, list):
        problems.append("buttons: expects a list")
        given_buttons = []
    if len(given_buttons) != len(dynamic):
        problems.append(f"buttons: expects {len(dynamic)} values (dynamic URL and copy-code buttons), "
                        f"got {len(given_buttons)}")
    else:
        for (index, sub_type), item in zip(dynamic, given_buttons, strict=True):
            if isinstance(item, Mapping):
                if "index" in item and _as_index(item["index"]) != index:
                    problems.append(f"buttons: expected button {index}, got {item['index']}")
                    continue
                value = item.get("text", item.get("coupon_code"))
            else:
                value = item
            if not isinstance(value, str) or not value.strip():
                problems.append(f"buttons: empty value for button {index}")
                continue
            param = ({"type": "coupon_code", "coupon_code": value} if sub_type == "copy_code"
                     else {"type": "text", "text": value})
            out.append({"type": "button", "sub_type": sub_type, "index": str(index), "parameters": [param]})

    if problems:
        raise ValidationFailed("the parameters do not fit the template", {"problems": problems})
    return TemplateSend(components=out, text="\n".join(s for s in shown if s), header_media=header_media)
