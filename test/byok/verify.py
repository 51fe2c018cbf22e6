#!/usr/bin/env python3
"""Offline verifiers of the BYOK artifacts (docs/byok/).

Each subcommand plays the cloud: it takes the artifact smartkey produced,
unwraps it with the stand-in private key exactly as the cloud documents
(the OAEP/MGF1 hash pair, RFC 5649 KWP, A256GCM) and compares the result
with the key material the test imported into SmartKey. Exit status 0 when
the artifact is right, 1 with a reason on stderr otherwise; so a wrong hash
makes the verifier fail, which the tests assert too.

Only Debian's python3-cryptography and python3-jwcrypto are used: code not
written here checks what smartkey wrote.
"""
import argparse
import base64
import hashlib
import json
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding

HASHES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256,
          "sha512": hashes.SHA512}


class Mismatch(Exception):
    pass


def need(condition, what):
    if not condition:
        raise Mismatch(what)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def load_private(path):
    return serialization.load_pem_private_key(read(path), password=None)


def oaep(name):
    h = HASHES[name]
    return padding.OAEP(mgf=padding.MGF1(algorithm=h()), algorithm=h(),
                        label=None)


def b64_strict(data, url=False):
    text = data.decode("ascii")
    need("\n" not in text and " " not in text, "no line breaks in Base64")
    if url:
        need("=" not in text, "base64url without padding")
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return base64.b64decode(text, validate=True)


def decode(data, encoding):
    if encoding == "raw":
        return data
    return b64_strict(data, url=encoding == "base64url")


def public_der(key):
    return key.public_key().public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo)


def same_material(recovered, expected_path, kind):
    """Raw keys byte for byte; PKCS#8 keys as keys (the same public key
    and private value), since two valid PKCS#8 encodings of one key may
    differ in optional fields."""
    if kind == "raw":
        need(recovered == read(expected_path),
             "the unwrapped bytes differ from the key's material")
        return
    got = serialization.load_der_private_key(recovered, password=None)
    want = load_private(expected_path)
    need(type(got) is type(want), "the unwrapped key has another type")
    need(public_der(got) == public_der(want),
         "the unwrapped PKCS#8 key is another key")
    need(got.private_numbers() == want.private_numbers(),
         "the unwrapped PKCS#8 key has another private value")


def rsa_aes_unwrap(priv, hash_name, blob):
    """CKM_RSA_AES_KEY_WRAP: OAEP(H) of an AES-256 key || KWP."""
    n = priv.key_size // 8
    need(len(blob) > n + 8, "the blob is shorter than one RSA block + KWP")
    kwp = blob[n:]
    need(len(kwp) % 8 == 0, "the KWP part is not a multiple of 8 bytes")
    try:
        aes = priv.decrypt(blob[:n], oaep(hash_name))
    except ValueError:
        raise Mismatch("the RSA block does not decrypt with OAEP-%s"
                       % hash_name)
    need(len(aes) == 32, "the wrapped AES key is %d bytes, not 32" % len(aes))
    try:
        material = aes_key_unwrap_with_padding(aes, kwp)
    except Exception:
        raise Mismatch("the KWP part does not unwrap (RFC 5649)")
    need(len(kwp) == 8 * ((len(material) + 7) // 8) + 8,
         "the KWP length does not match RFC 5649")
    return material


def cmd_rsa_oaep(a):
    priv = load_private(a.private_key)
    block = decode(read(a.artifact), a.encoding)
    need(len(block) == priv.key_size // 8,
         "the block is %d bytes, not the modulus size" % len(block))
    try:
        material = priv.decrypt(block, oaep(a.hash))
    except ValueError:
        raise Mismatch("does not decrypt with OAEP-%s" % a.hash)
    same_material(material, a.expected, a.kind)


def cmd_rsa_aes(a):
    priv = load_private(a.private_key)
    blob = decode(read(a.artifact), a.encoding)
    same_material(rsa_aes_unwrap(priv, a.hash, blob), a.expected, a.kind)


def cmd_azure(a):
    priv = load_private(a.private_key)
    doc = json.loads(read(a.artifact).decode("utf-8"))
    need(set(doc) == {"schema_version", "header", "ciphertext", "generator"},
         "fields %s" % sorted(doc))
    need(doc["schema_version"] == "1.0.0", "schema_version")
    need(doc["header"] == {"kid": a.kid, "alg": "dir",
                           "enc": "CKM_RSA_AES_KEY_WRAP"},
         "header %r" % doc["header"])
    need(isinstance(doc["generator"], str) and doc["generator"], "generator")
    blob = b64_strict(doc["ciphertext"].encode("ascii"), url=True)
    # the specification says RSA-OAEP with SHA-1
    same_material(rsa_aes_unwrap(priv, "sha1", blob), a.expected, a.kind)


def b64u(text):
    need("=" not in text, "base64url without padding")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def cmd_jwe(a):
    from jwcrypto import jwe, jwk

    text = read(a.artifact).decode("ascii")
    if a.salesforce:
        doc = json.loads(text)
        need(set(doc) == {"kid", "jwe"}, "fields %s" % sorted(doc))
        need(doc["kid"] == a.kid, "kid of the answer")
        text = doc["jwe"]
    parts = text.split(".")
    need(len(parts) == 5, "a compact JWE has five parts")
    header = json.loads(b64u(parts[0]))
    want = {"alg": "RSA-OAEP", "enc": "A256GCM", "kid": a.kid}
    if a.jti is not None:
        want["jti"] = a.jti
    need(header == want, "protected header %r" % header)
    need(len(b64u(parts[2])) == 12, "the IV is 96 bits")
    need(len(b64u(parts[4])) == 16, "the tag is 128 bits")
    # the JOSE implementation decrypts with the stand-in key
    key = jwk.JWK.from_pem(read(a.private_key))
    token = jwe.JWE()
    try:
        token.deserialize(text, key=key)
    except Exception as e:
        raise Mismatch("jwcrypto cannot decrypt the JWE: %s" % e)
    need(token.payload == read(a.expected),
         "the JWE's plaintext differs from the key's material")
    need(len(token.payload) == 32, "Salesforce takes 32-byte keys only")
    # the same by hand: RSA-OAEP (SHA-1) of the CEK, then AES-256-GCM
    priv = load_private(a.private_key)
    cek = priv.decrypt(b64u(parts[1]), oaep("sha1"))
    plain = AESGCM(cek).decrypt(b64u(parts[2]),
                                b64u(parts[3]) + b64u(parts[4]),
                                parts[0].encode("ascii"))
    need(plain == read(a.expected), "manual A256GCM decryption")


def cmd_sha256(a):
    digest = decode(read(a.artifact), a.encoding)
    need(digest == hashlib.sha256(read(a.expected)).digest(),
         "not the SHA-256 of the key's material")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    def common(name, func, private=True):
        s = sub.add_parser(name)
        if private:
            s.add_argument("private_key", help="stand-in private key (PEM)")
        s.add_argument("artifact")
        s.add_argument("expected",
                       help="the material: raw bytes, or the private key "
                            "PEM for --kind pkcs8")
        s.set_defaults(func=func)
        return s

    for name, func in (("rsa-oaep", cmd_rsa_oaep), ("rsa-aes", cmd_rsa_aes)):
        s = common(name, func)
        s.add_argument("--hash", choices=sorted(HASHES), required=True)
        s.add_argument("--encoding", default="raw",
                       choices=["raw", "base64", "base64url"])
        s.add_argument("--kind", default="raw", choices=["raw", "pkcs8"])
    s = common("azure", cmd_azure)
    s.add_argument("--kid", required=True)
    s.add_argument("--kind", default="raw", choices=["raw", "pkcs8"])
    s = common("jwe", cmd_jwe)
    s.add_argument("--kid", required=True)
    s.add_argument("--jti")
    s.add_argument("--salesforce", action="store_true",
                   help="the key service's JSON answer around the JWE")
    s = common("sha256", cmd_sha256, private=False)
    s.add_argument("--encoding", default="raw",
                   choices=["raw", "base64", "base64url"])

    a = p.parse_args()
    try:
        a.func(a)
    except Mismatch as e:
        print("verify %s: %s" % (a.command, e), file=sys.stderr)
        return 1
    except (ValueError, KeyError, TypeError) as e:
        print("verify %s: malformed artifact: %s" % (a.command, e),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
