#!/usr/bin/env python3
"""Build an EMVCo merchant-presented QR payload (or a whole test fixture) from a field list.

Independent of the Rust code: lengths are counted in Unicode code points, the CRC is
CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final XOR) over the UTF-8 bytes
of everything up to and including "6304", written as 4 upper-case hex digits.

Field list (JSON), in payload order:
    [["00", "01"], ["01", "11"],
     ["29", [["00", "A000000677010111"], ["01", "0066812345678"]]],
     ["53", "764"], ["58", "TH"]]
  - a value that is a list is a template (nested to any depth);
  - a JSON object {"00": "01", "29": {"00": "..."}} works too (key order is kept);
  - ["54", "10.00", 7] declares length 07 whatever the value's length (to build broken fixtures);
  - ["RAW", "text"] inserts text verbatim (to build broken framing).
"63" is appended with the computed CRC unless --no-crc.

Usage:
  make_emv_fixture.py FIELDS_JSON                    print the payload
  make_emv_fixture.py - < fields.json                same, fields from stdin
  make_emv_fixture.py --fix-crc PAYLOAD              recompute the CRC of an existing payload
  make_emv_fixture.py FIELDS_JSON -o FILE --comment "..." --source "..." --expect "profile=X warnings=none"
                                                     write a fixture file (see testdata/emv)
Options: --lower-crc (write the CRC in lower case), --no-crc (append nothing).
"""

from __future__ import annotations

import argparse
import json
import sys


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def crc_hex(text_through_6304: str) -> str:
    return f"{crc16(text_through_6304.encode('utf-8')):04X}"


def _items(fields):
    if isinstance(fields, dict):
        return [[k, v] for k, v in fields.items()]
    return fields


def encode(fields) -> str:
    """Encode a field list (see module doc) without the CRC."""
    out = []
    for item in _items(fields):
        if not isinstance(item, (list, tuple)) or len(item) not in (2, 3):
            raise ValueError(f"field must be [id, value] or [id, value, length]: {item!r}")
        tid, value = item[0], item[1]
        if tid == "RAW":
            out.append(value)
            continue
        if not (isinstance(tid, str) and len(tid) == 2 and tid.isdigit()):
            raise ValueError(f"ID must be two digits: {tid!r}")
        if isinstance(value, (list, dict)):
            value = encode(value)
        length = item[2] if len(item) == 3 else len(value)  # code points, not bytes
        if not 0 <= length <= 99:
            raise ValueError(f"{tid}: length {length} does not fit two digits")
        out.append(f"{tid}{length:02d}{value}")
    return "".join(out)


def with_crc(body: str, lower: bool = False) -> str:
    """Append "6304" and the CRC over everything up to and including "6304"."""
    head = body + "6304"
    crc = crc_hex(head)
    return head + (crc.lower() if lower else crc)


def fix_crc(payload: str, lower: bool = False) -> str:
    """Recompute the CRC of a payload that ends with 63 04 XXXX (or has no CRC yet)."""
    if len(payload) >= 8 and payload[-8:-4] == "6304":
        payload = payload[:-8]
    return with_crc(payload, lower)


def build(fields, lower: bool = False, crc: bool = True) -> str:
    body = encode(fields)
    return with_crc(body, lower) if crc else body


def fixture_text(payload: str, comment: str, source: str, expect: str, extra=()) -> str:
    lines = [f"# {line}" for line in comment.splitlines()]
    if source:
        lines.append(f"# source: {source}")
    lines.extend(f"# {e}" for e in extra)
    lines.append(f"# expect: {expect}")
    lines.append(payload)
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("fields", nargs="?", help="field list as JSON, or - for stdin")
    ap.add_argument("--fix-crc", metavar="PAYLOAD", help="recompute the CRC of PAYLOAD")
    ap.add_argument("--lower-crc", action="store_true", help="write the CRC in lower-case hex")
    ap.add_argument("--no-crc", action="store_true", help="do not append 63")
    ap.add_argument("-o", "--output", help="write a fixture file instead of printing the payload")
    ap.add_argument("--comment", default="", help="fixture: what the payload is (may contain newlines)")
    ap.add_argument("--source", default="", help="fixture: where its shape or value comes from")
    ap.add_argument("--expect", default="", help='fixture: e.g. "profile=PromptPay warnings=none"')
    args = ap.parse_args(argv)

    try:
        if args.fix_crc is not None:
            payload = fix_crc(args.fix_crc, args.lower_crc)
        elif args.fields is not None:
            text = sys.stdin.read() if args.fields == "-" else args.fields
            payload = build(json.loads(text), args.lower_crc, not args.no_crc)
        else:
            ap.error("give a field list or --fix-crc PAYLOAD")
    except (ValueError, json.JSONDecodeError) as e:
        print(f"make_emv_fixture: {e}", file=sys.stderr)
        return 2

    if args.output:
        if not args.expect:
            ap.error("--output needs --expect")
        with open(args.output, "w", encoding="utf-8", newline="\n") as f:
            f.write(fixture_text(payload, args.comment, args.source, args.expect))
    else:
        print(payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
