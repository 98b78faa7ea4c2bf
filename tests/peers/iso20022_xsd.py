#!/usr/bin/env python3
"""Validates ISO 20022 documents against the official message schemas (XSD), with the PyPI
`xmlschema` package as the independent validator.

Input (stdin): one JSON object per line, {"name": "...", "xml": "<?xml ...?><Document ...>"}.
Output (stdout): one JSON object per input line, {"name": "...", "ok": true|false, "errors": [...]}.
The schema is chosen by the namespace of the root `Document`
(urn:iso:std:iso:20022:tech:xsd:<message>) from testdata/schemes/iso20022/xsd/<message>.xsd;
a namespace with no schema there is an error, never a pass.
"""
import json
import os
import sys
import xml.etree.ElementTree as ET

import xmlschema

HERE = os.path.dirname(os.path.abspath(__file__))
XSD_DIR = os.path.join(HERE, "..", "..", "testdata", "schemes", "iso20022", "xsd")
PREFIX = "urn:iso:std:iso:20022:tech:xsd:"
schemas = {}


def schema_for(namespace):
    if not namespace.startswith(PREFIX):
        raise ValueError(f"root namespace {namespace!r} is not an ISO 20022 message namespace")
    message = namespace[len(PREFIX):]
    path = os.path.join(XSD_DIR, message + ".xsd")
    if not os.path.isfile(path):
        raise ValueError(f"no schema for {message} in testdata/schemes/iso20022/xsd/")
    if message not in schemas:
        schemas[message] = xmlschema.XMLSchema(path)
    return schemas[message]


def check(text):
    try:
        root = ET.fromstring(text.encode("utf-8"))
    except ET.ParseError as e:
        return [f"not well-formed: {e}"]
    if not root.tag.startswith("{"):
        return ["the root element has no namespace"]
    namespace = root.tag[1:].split("}")[0]
    try:
        schema = schema_for(namespace)
    except ValueError as e:
        return [str(e)]
    return [f"{e.path}: {e.reason}" for e in schema.iter_errors(text)]


for line in sys.stdin:
    if not line.strip():
        continue
    doc = json.loads(line)
    errors = check(doc["xml"])
    print(json.dumps({"name": doc["name"], "ok": not errors, "errors": errors}), flush=True)
