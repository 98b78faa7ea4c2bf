#!/usr/bin/env python3
"""An independent implementation of the Alipay+ RSA256 message signature, for tests/schemes/aplus.rs.

Built on the `cryptography` package (OpenSSL), not on qrbridge's code. One JSON command per stdin
line, one JSON answer per stdout line:

  {"op": "sign", "key": PEM-PATH, "method", "path", "client", "time", "body_b64", "version"}
      -> {"header": "algorithm=RSA256,keyVersion=N,signature=<url-encoded base64>"}
  {"op": "verify", "key": PEM-PATH, "method", "path", "client", "time", "body_b64", "header"}
      -> {"ok": true|false, "why": "..."}

The string signed is "<METHOD> <path>\\n<client-id>.<time>.<body>" (spec/schemes/aplus.md §2).
"""
import base64
import json
import sys
import urllib.parse

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding


def to_sign(c):
    head = "%s %s\n%s.%s." % (c["method"], c["path"], c["client"], c["time"])
    return head.encode("utf-8") + base64.b64decode(c["body_b64"])


def sign(c):
    with open(c["key"], "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    raw = key.sign(to_sign(c), padding.PKCS1v15(), hashes.SHA256())
    value = urllib.parse.quote(base64.b64encode(raw).decode("ascii"), safe="")
    return {"header": "algorithm=RSA256,keyVersion=%d,signature=%s" % (c["version"], value)}


def verify(c):
    with open(c["key"], "rb") as f:
        key = serialization.load_pem_public_key(f.read())
    pairs = dict(p.strip().split("=", 1) for p in c["header"].split(","))
    if pairs.get("algorithm") != "RSA256":
        return {"ok": False, "why": "algorithm %r" % pairs.get("algorithm")}
    raw = base64.b64decode(urllib.parse.unquote(pairs["signature"]), validate=True)
    try:
        key.verify(raw, to_sign(c), padding.PKCS1v15(), hashes.SHA256())
        return {"ok": True, "why": ""}
    except InvalidSignature:
        return {"ok": False, "why": "signature does not verify"}


for line in sys.stdin:
    if not line.strip():
        continue
    cmd = json.loads(line)
    out = sign(cmd) if cmd["op"] == "sign" else verify(cmd)
    print(json.dumps(out), flush=True)
