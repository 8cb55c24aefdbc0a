"""rest-xml for the S3 Control job operations, driven by botocore's own service model.

The server side of what botocore does on the client: a request body parsed into the dict the
client was given, and a response dict written as the XML botocore's parser reads back. Driving
both from the model (instead of hand-written element names) keeps every shape, list wrapper
(``<member>``) and map wrapper (``<entry><key/><value/></entry>``) exactly as boto3 expects.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from xml.etree import ElementTree as ET

NAMESPACE = "http://awss3control.amazonaws.com/doc/2018-08-20/"


def service_model() -> Any:
    """The s3control model (loaded once per call site; botocore caches the JSON)."""
    import botocore.session

    return botocore.session.get_session().get_service_model("s3control")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_name(shape: Any, default: str) -> str:
    return str(shape.serialization.get("name", default))


def parse_element(element: ET.Element, shape: Any) -> Any:
    """One XML element → the Python value of ``shape``."""
    kind = shape.type_name
    if kind == "structure":
        by_name = {_child_name(s, n): (n, s) for n, s in shape.members.items()}
        result: dict[str, Any] = {}
        for child in element:
            found = by_name.get(_local(child.tag))
            if found:
                result[found[0]] = parse_element(child, found[1])
        return result
    if kind == "list":
        item = _child_name(shape.member, "member")
        return [parse_element(c, shape.member) for c in element if _local(c.tag) == item]
    if kind == "map":
        key_name = _child_name(shape.key, "key")
        value_name = _child_name(shape.value, "value")
        result = {}
        for entry in element:
            parts = {_local(c.tag): c for c in entry}
            if key_name in parts:
                value = parts.get(value_name)
                result[parts[key_name].text or ""] = (
                    parse_element(value, shape.value) if value is not None else ""
                )
        return result
    return parse_scalar(element.text or "", shape)


def parse_scalar(text: str, shape: Any) -> Any:
    """A query-string or element text → int, bool or str as the shape says."""
    kind = shape.type_name
    if kind in ("integer", "long"):
        return int(text)
    if kind == "boolean":
        return text.strip().lower() == "true"
    return text


def parse_body(body: bytes, shape: Any) -> dict[str, Any]:
    """A request body (root element named after the input shape) → its body members."""
    if not body.strip():
        return {}
    return parse_element(ET.fromstring(body), shape)


def _text(value: Any, shape: Any) -> str:
    if shape.type_name == "boolean":
        return "true" if value else "false"
    if shape.type_name == "timestamp":
        if isinstance(value, str):
            return value
        stamp = value.astimezone(dt.timezone.utc) if value.tzinfo else value
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return str(value)


def build_element(parent: ET.Element, name: str, value: Any, shape: Any) -> None:
    """Append ``value`` (of ``shape``) to ``parent`` as element ``name``."""
    node = ET.SubElement(parent, name)
    kind = shape.type_name
    if kind == "structure":
        for member, sub in shape.members.items():
            if (
                member in value
                and value[member] is not None
                and not sub.serialization.get("location")
            ):
                build_element(node, _child_name(sub, member), value[member], sub)
    elif kind == "list":
        for item in value:
            build_element(node, _child_name(shape.member, "member"), item, shape.member)
    elif kind == "map":
        for key, item in value.items():
            entry = ET.SubElement(node, "entry")
            build_element(entry, _child_name(shape.key, "key"), key, shape.key)
            build_element(entry, _child_name(shape.value, "value"), item, shape.value)
    else:
        node.text = _text(value, shape)


def to_xml(root: str, value: dict[str, Any], shape: Any) -> bytes:
    """A response document: ``<root xmlns=...>`` holding the members of ``shape`` in ``value``."""
    holder = ET.Element("holder")
    build_element(holder, root, value, shape)
    element = holder[0]
    element.set("xmlns", NAMESPACE)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(element)


def error_xml(code: str, message: str, request_id: str) -> bytes:
    """An S3-style error document (``<Error><Code/><Message/></Error>``)."""
    root = ET.Element("Error")
    ET.SubElement(root, "Code").text = code
    ET.SubElement(root, "Message").text = message
    ET.SubElement(root, "RequestId").text = request_id
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root)
