#!/usr/bin/env python3
"""A TLS proxy in front of the emulator that damages the signature
in answers to POST /crypto/v1/sign, so tests can prove the provider never
hands on a signature of the wrong shape.

Usage: tamper_proxy.py UPSTREAM_URL CA_FILE MODE_FILE PORT_FILE
MODE_FILE holds one word, re-read per request: none, short, long,
above-modulus, not-der, trailing, zero-r (wrong shapes), and two modes
whose signatures have the right shape but are wrong:
  wrong-message  the digest in the sign request is changed before it goes
                 on, so SmartKey signs another message: a genuine RSA
                 PKCS#1 / PSS signature below the modulus, or strict-DER
                 ECDSA, that does not verify for the digest the client sent
  bit-flip       the last bit of the signature is flipped (an RSA value
                 still below the modulus, an ECDSA s still in range)
Both the single (/crypto/v1/sign) and the batch (/crypto/v1/keys/batch/sign)
endpoints are damaged. The chosen port is written to PORT_FILE once the
proxy listens."""
import base64
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "common"))
import tls_relay  # noqa: E402

upstream, ca_file, mode_file, port_file = sys.argv[1:5]


def damage(signature, mode):
    if mode == "short":
        return signature[:-1]
    if mode == "long":
        return signature + b"\0"
    if mode == "above-modulus":
        return b"\xff" * len(signature)
    if mode == "not-der":
        return b"\x00" * len(signature)
    if mode == "trailing":
        return signature + b"\0"
    if mode == "zero-r":
        return bytes([0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01])
    if mode == "bit-flip":
        return signature[:-1] + bytes([signature[-1] ^ 0x01])
    return signature


SIGN_PATHS = ("/crypto/v1/sign", "/crypto/v1/keys/batch/sign")


def read_mode():
    with open(mode_file) as f:
        return f.read().strip()


def other_digest(request):
    """wrong-message: the sign request asks for a signature of another
    digest (first byte changed)."""
    digest = bytearray(base64.b64decode(request["hash"]))
    digest[0] ^= 0x80
    request["hash"] = base64.b64encode(bytes(digest)).decode()


def tamper_request(path, body, mode):
    if mode != "wrong-message" or path not in SIGN_PATHS or not body:
        return body
    request = json.loads(body)
    for item in request if isinstance(request, list) else [request]:
        other_digest(item)
    return json.dumps(request).encode()


def tamper_answer(path, payload, mode):
    answer = json.loads(payload)
    if path == "/crypto/v1/sign":
        signed = [answer]
    else:
        signed = [item["body"] for item in answer
                  if isinstance(item, dict) and
                  isinstance(item.get("body"), dict)]
    for result in signed:
        signature = base64.b64decode(result["signature"])
        result["signature"] = base64.b64encode(
            damage(signature, mode)).decode()
    return json.dumps(answer).encode()


def change_answer(method, path, status, payload):
    mode = read_mode()
    if (method == "POST" and path in SIGN_PATHS and status == 200
            and mode not in ("none", "wrong-message")):
        return tamper_answer(path, payload, mode)
    return payload


tls_relay.serve(upstream, ca_file, port_file,
                lambda path, body: tamper_request(path, body, read_mode()),
                change_answer)
