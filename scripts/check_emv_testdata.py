#!/usr/bin/env python3
"""Independent check of the EMV test payloads in testdata/emv/{valid,invalid} (standard library only).

A second implementation, so no payload is vouched for only by the code under test. For every file:
  - format: UTF-8, LF line endings, a final newline; every line is either a comment (starting "#")
    or the one payload line; exactly one "# expect:" comment with the keys allowed for its folder;
  - valid files: the CRC (63) is last, 4 hex digits (either case) and correct; lengths frame the
    payload at the root and inside templates 26-51, 62, 64 and 80-99, counting code points;
    at most 512 characters; a lower-case CRC is expected to warn crc_lowercase;
  - invalid files not of kind "crc": the CRC is correct where it stands, so each file tests what its
    "expect" line says and not the checksum; mode=strict files also say "# default: valid" (and may name the default mode's warning=).
Exits 1 with one line per problem, else prints e.g. "emv testdata: 48 valid, 37 invalid checked".
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "testdata" / "emv"
KINDS = {"crc", "truncated", "bad_length", "order", "duplicate", "missing_mandatory",
         "bad_value", "bad_char", "too_long"}
DEVIATIONS = {"mcc_absent", "name_absent", "city_absent", "pfi_02", "additional_data_00",
              "account_id_as_guid", "opaque_template", "guid_absent", "text_too_long",
              "non_ascii_text", "mcc_format", "currency_alpha", "amount_too_precise",
              "consumer_data_request", "channel_undefined"}
WARNINGS = DEVIATIONS | {"crc_lowercase", "amount_decimals", "country_mismatch"}
PATH = re.compile(r"^$|^\d\d(\.\d\d){0,2}$")
HEX4 = re.compile(r"^[0-9A-Fa-f]{4}$")


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final XOR."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def is_template(tid: int) -> bool:
    return 26 <= tid <= 51 or tid in (62, 64) or tid >= 80


def frame(s: str, at: int = 0):
    """Split s (at character offset `at` of the payload) into (id, value, offset); raise on bad framing."""
    out, i = [], 0
    while i < len(s):
        head = s[i:i + 4]
        if len(head) < 4 or not head.isascii() or not head.isdigit():
            raise ValueError(f"bad ID/length {head!r} at offset {at + i}")
        tid, n = int(head[:2]), int(head[2:])
        if n == 0:
            raise ValueError(f"length 00 at offset {at + i + 2}")
        if i + 4 + n > len(s):
            raise ValueError(f"ID {head[:2]} at offset {at + i}: length {n} runs past the end")
        out.append((tid, s[i + 4:i + 4 + n], at + i))
        i += 4 + n
    return out


def crc_ok(payload: str, end: int) -> bool:
    """True if payload[end-8:end] is "6304" + the CRC of payload[:end-4]."""
    value = payload[end - 4:end]
    return (end >= 8 and payload[end - 8:end - 4] == "6304" and bool(HEX4.match(value))
            and int(value, 16) == crc16(payload[:end - 4].encode("utf-8")))


def check_valid(payload: str, expect: dict) -> list[str]:
    errs = []
    if len(payload) > 512:
        errs.append(f"payload has {len(payload)} characters (> 512)")
    try:
        elements = frame(payload)
        for tid, value, at in elements:
            if is_template(tid):
                frame(value, at + 4)
    except ValueError as e:
        return errs + [f"framing: {e}"]
    if not elements or elements[-1][0] != 63 or len(elements[-1][1]) != 4:
        return errs + ["CRC (6304....) is not the last data object"]
    if not crc_ok(payload, len(payload)):
        errs.append(f"wrong CRC {payload[-4:]}, computed {crc16(payload[:-4].encode()):04X}")
    if payload[-4:] != payload[-4:].upper() and "crc_lowercase" not in expect.get("warnings", ""):
        errs.append("lower-case CRC but crc_lowercase is not among the expected warnings")
    return errs


def check_invalid(payload: str, expect: dict) -> list[str]:
    if expect.get("kind") == "crc":
        return []
    if crc_ok(payload, len(payload)):
        return []
    if expect.get("kind") == "order" and expect.get("path") == "63":
        try:  # 63 is not last: its CRC must be right where it stands
            for tid, value, at in frame(payload):
                if tid == 63 and crc_ok(payload, at + 8):
                    return []
        except ValueError:
            pass
    return ["CRC is not correct (only kind=crc files may have a bad CRC)"]


def parse_expect(text: str, folder: str) -> tuple[dict, list[str]]:
    allowed = {"profile", "warnings", "country"} if folder == "valid" else {"kind", "path", "offset", "mode", "warning"}
    required = {"profile", "warnings"} if folder == "valid" else {"kind", "path"}
    expect, errs = {}, []
    # key=value pairs; a value runs to the next " key=" (profile names may hold spaces: "QR Ph")
    for token in re.split(r"\s+(?=[a-z]+=)", text.strip()):
        key, eq, value = token.partition("=")
        if not eq or key not in allowed or key in expect:
            errs.append(f"expect: bad or repeated key in {token!r}")
        expect[key] = value
    errs += [f"expect: missing {k}=" for k in sorted(required - expect.keys())]
    if folder == "valid":
        warns = expect.get("warnings", "")
        unknown = set(warns.split(",")) - WARNINGS if warns != "none" else set()
        if unknown or not warns:
            errs.append(f"expect: unknown warnings {sorted(unknown)}")
        if "country" in expect and not re.fullmatch(r"[A-Z]{2}", expect["country"]):
            errs.append("expect: country must be two upper-case letters")
    else:
        if expect.get("kind") not in KINDS:
            errs.append(f"expect: unknown kind {expect.get('kind')!r}")
        if not PATH.match(expect.get("path", "x")):
            errs.append(f"expect: bad path {expect.get('path')!r}")
        if "offset" in expect and not expect["offset"].isdigit():
            errs.append("expect: offset must be a number")
        if expect.get("mode", "strict") != "strict":
            errs.append("expect: mode can only be strict")
        if "warning" in expect and (expect.get("mode") != "strict" or expect["warning"] not in DEVIATIONS):
            errs.append("expect: warning= names a deviation, and only in a mode=strict file")
    return expect, errs


def check_file(path: Path, folder: str) -> list[str]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return [f"not UTF-8: {e}"]
    if "\r" in text:
        return ["CR in file (LF line endings only)"]
    if not text.endswith("\n"):
        return ["no final newline"]
    lines = text[:-1].split("\n")
    payloads = [line for line in lines if not line.startswith("#")]
    expects = [line[len("# expect:"):] for line in lines if line.startswith("# expect:")]
    if len(payloads) != 1 or not payloads[0]:
        return [f"expected exactly one non-empty payload line, found {len(payloads)} non-comment lines"]
    if len(expects) != 1:
        return [f"expected exactly one '# expect:' line, found {len(expects)}"]
    payload = payloads[0]
    expect, errs = parse_expect(expects[0], folder)
    if folder == "valid":
        errs += check_valid(payload, expect)
    else:
        errs += check_invalid(payload, expect)
        if "offset" in expect and expect["offset"].isdigit() and int(expect["offset"]) >= len(payload):
            errs.append(f"offset {expect['offset']} is past the payload ({len(payload)} characters)")
        if expect.get("mode") == "strict" and not any(l.startswith("# default: valid") for l in lines):
            errs.append("mode=strict needs a '# default: valid' line")
    return errs


def check_real(path: Path) -> tuple[int, list[str]]:
    """A corpus file of testdata/emv/real: a first line naming the source, then entries of
    "# at: FILE", "# expect: accept warnings=..|refuse kind=K path=P", one payload line. An accepted
    code has a correct CRC and frames at the root; a code refused for its CRC has a wrong one."""
    text = path.read_text(encoding="utf-8")
    errs, n = [], 0
    if not text.startswith("# Codes found in https://"):
        errs.append("first line must name the source: '# Codes found in https://...'")
    at = expect = None
    for line in text.split("\n"):
        if line.startswith("# at: "):
            at = line[6:]
        elif line.startswith("# expect: "):
            expect = line[10:]
        elif line and not line.startswith("#"):
            n += 1
            if not at or not expect:
                errs.append(f"code {n}: needs '# at:' and '# expect:' before it")
            elif expect.startswith("accept warnings="):
                warns = expect[len("accept warnings="):]
                unknown = set(warns.split(",")) - WARNINGS if warns != "none" else set()
                if unknown:
                    errs.append(f"code {n}: unknown warnings {sorted(unknown)}")
                if not crc_ok(line, len(line)):
                    errs.append(f"code {n}: accepted, but its CRC is wrong")
                try:
                    list(frame(line))
                except ValueError as e:
                    errs.append(f"code {n}: accepted, but it does not frame: {e}")
            elif expect.startswith("refuse kind="):
                kind = expect[len("refuse kind="):].split(" ")[0]
                if kind not in KINDS:
                    errs.append(f"code {n}: unknown kind {kind!r}")
                if kind == "crc" and len(line) >= 8 and line[-8:-4] == "6304" and crc_ok(line, len(line)):
                    errs.append(f"code {n}: refused for its CRC, but the CRC is right")
            else:
                errs.append(f"code {n}: bad expect {expect!r}")
            at = expect = None
    return n, errs


def main() -> int:
    problems, counts = [], {}
    counts["real"] = 0
    for path in sorted((ROOT / "real").glob("*.txt")):
        n, errs = check_real(path)
        counts["real"] += n
        problems += [f"{path.relative_to(ROOT.parent.parent)}: {e}" for e in errs]
    for folder in ("valid", "invalid"):
        files = sorted((ROOT / folder).glob("*"))
        counts[folder] = 0
        for path in files:
            if path.suffix != ".txt" or not path.is_file():
                problems.append(f"{path}: not a .txt fixture")
                continue
            counts[folder] += 1
            problems += [f"{path.relative_to(ROOT.parent.parent)}: {e}" for e in check_file(path, folder)]
        if counts[folder] == 0:
            problems.append(f"{ROOT / folder}: no fixtures")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"emv testdata: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"emv testdata: {counts['valid']} valid, {counts['invalid']} invalid, {counts['real']} real-world codes checked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
