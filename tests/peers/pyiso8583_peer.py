#!/usr/bin/env python3
"""Independent peer for the ISO 8583 differential tests: pyiso8583 with its default ASCII spec.

Reads one JSON request per line on stdin, writes one JSON answer per line on stdout:
  {"op": "decode", "hex": "..."}              -> {"mti": "0200", "fields": {"3": "..."}} or {"error": "..."}
  {"op": "encode", "mti": "0200", "fields": {...}} -> {"hex": "..."} or {"error": "..."}
Bitmaps ("p", "1") are not reported as fields.
"""
import json
import sys

import iso8583
from iso8583.specs import default_ascii as SPEC


def decode(hexstr):
    doc, _ = iso8583.decode(bytes.fromhex(hexstr), SPEC)
    fields = {k: v for k, v in doc.items() if k not in ("t", "p", "1", "h")}
    return {"mti": doc["t"], "fields": fields}


def encode(mti, fields):
    doc = {"t": mti}
    doc.update(fields)
    raw, _ = iso8583.encode(doc, SPEC)
    return {"hex": bytes(raw).hex().upper()}


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        try:
            if req["op"] == "decode":
                ans = decode(req["hex"])
            else:
                ans = encode(req["mti"], req["fields"])
        except Exception as e:  # any refusal is an answer, not a crash
            ans = {"error": "%s: %s" % (type(e).__name__, e)}
        sys.stdout.write(json.dumps(ans) + "\n")


if __name__ == "__main__":
    main()
