#!/usr/bin/env python3
"""TLS relay in front of the emulator that changes the LENGTH of the
result a crypto answer carries, the way a broken or hostile server (or a
proxy) could: the fault matrix proves the provider refuses such results
instead of handing them to the application.

Usage: reshape_proxy.py UPSTREAM_URL CA_FILE SHAPE_FILE PORT_FILE
SHAPE_FILE holds one word, read for every request:
  as-is       forward unchanged
  drop-last   the result loses its last byte
  extra-byte  the result gains a byte
  empty       the result is empty
  oversized   the result is 600 bytes (more than any RSA-2048 result)
  over-oaep   the result is 191 bytes (one more than RSA-2048 OAEP-SHA256
              can carry)
  one-byte    the result is 1 byte (two wraps: a 2-byte rsa-aes-key-wrap)
  over-pkcs1  the result is 246 bytes (one more than RSA-2048 PKCS#1 v1.5
              can carry)
The fields changed: signature (sign), plain (decrypt), wrapped_key
(wrapkey), digest (keys/digest). Hostile answers of the right form:
  aes-128-cek a transient AES key is asked for as 128 bits instead of 256
              (the request is changed, so SmartKey really makes one)
  other-iv    a GCM wrap answer states another IV than the one sent
  other-name  key info names another key
  other-kid   key info carries another kid
The port is written to PORT_FILE once listening."""
import base64
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "common"))
import tls_relay  # noqa: E402

UPSTREAM, CA_FILE, SHAPE_FILE, PORT_FILE = sys.argv[1:5]
RESULT_FIELD = {
    "/crypto/v1/sign": "signature",
    "/crypto/v1/decrypt": "plain",
    "/crypto/v1/wrapkey": "wrapped_key",
    "/crypto/v1/keys/digest": "digest",
}
OTHER_KID = "00000000-0000-4000-8000-000000000bad"


RESHAPES = {
    "drop-last": lambda value: value[:-1],
    "extra-byte": lambda value: value + b"\x01",
    "empty": lambda value: b"",
    "oversized": lambda value: os.urandom(600),
    "over-oaep": lambda value: os.urandom(191),
    "one-byte": lambda value: b"\x01",
    "over-pkcs1": lambda value: os.urandom(246),
}


def reshape(value, shape):
    return RESHAPES.get(shape, lambda value: value)(value)


def reshape_request(path, body, shape):
    """aes-128-cek: the transient AES key is made with 128 bits."""
    if shape != "aes-128-cek" or path != "/crypto/v1/keys" or not body:
        return body
    request = json.loads(body)
    if request.get("obj_type") == "AES" and request.get("transient"):
        request["key_size"] = 128
    return json.dumps(request).encode()


def hostile_answer(path, answer, shape):
    """Answers of the right form that say something wrong."""
    if shape == "other-iv" and path == "/crypto/v1/wrapkey" and "iv" in answer:
        iv = bytearray(base64.b64decode(answer["iv"]))
        iv[0] ^= 0x01
        answer["iv"] = base64.b64encode(bytes(iv)).decode()
    elif shape == "other-name" and path == "/crypto/v1/keys/info":
        answer["name"] = "someone-else"
    elif shape == "other-kid" and path == "/crypto/v1/keys/info":
        answer["kid"] = OTHER_KID
    return answer


def read_shape():
    with open(SHAPE_FILE) as f:
        return f.read().strip()


def change_answer(method, path, status, payload):
    shape = read_shape()
    if status // 100 != 2 or shape == "as-is" or not payload:
        return payload
    answer = json.loads(payload)
    if not isinstance(answer, dict):
        return payload
    field = RESULT_FIELD.get(path)
    if field is not None and field in answer:
        value = base64.b64decode(answer[field])
        answer[field] = base64.b64encode(reshape(value, shape)).decode()
    return json.dumps(hostile_answer(path, answer, shape)).encode()


tls_relay.serve(UPSTREAM, CA_FILE, PORT_FILE,
                lambda path, body: reshape_request(path, body, read_shape()),
                change_answer)
