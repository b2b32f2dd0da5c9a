"""JWTTokenApi with tokens made by PyJWT and keys made by cryptography
(test-only packages): RS256/384/512 and HS256/384/512 accepted; alg none,
the HS-with-the-RSA-public-key confusion, tampered signatures, expired and
not-yet-valid tokens and JWE refused; then a browser-like client through
the proxy."""

import base64
import hashlib
import hmac
import json
import os
import time

import pytest

import wsproxy
from wsproxy import HttpError, Target

try:   # test-only packages: tests/requirements.txt
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
except ImportError as exc:
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("PyJWT and cryptography make these tests' tokens: %s" % exc, allow_module_level=True)

CLAIMS = {"host": "10.0.0.7", "port": 5901}


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key, kind):
    if kind == "spki":
        return key.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    if kind == "pkcs1-public":
        return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    private = {"pkcs8": serialization.PrivateFormat.PKCS8,
               "pkcs1-private": serialization.PrivateFormat.TraditionalOpenSSL}[kind]
    return key.private_bytes(serialization.Encoding.PEM, private, serialization.NoEncryption())


def source_with(tmp_path, data: bytes):
    path = tmp_path / "jwt.key"
    path.write_bytes(data)
    return wsproxy.JWTTokenApi(str(path))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def refusal(source, token) -> str:
    with pytest.raises(HttpError) as info:
        source.lookup(token)
    assert info.value.status == 403
    return info.value.reason


@pytest.mark.parametrize("kind", ["spki", "pkcs1-public", "pkcs8", "pkcs1-private"])
@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512"])
def test_rsa_tokens_verify_with_every_pem_form(tmp_path, rsa_key, kind, alg):
    source = source_with(tmp_path, pem(rsa_key, kind))
    token = jwt.encode(dict(CLAIMS, exp=int(time.time()) + 60, view_only=True), rsa_key, algorithm=alg)
    entry = source.lookup(token)
    assert entry.target == Target("10.0.0.7", 5901) and entry.view_only is True


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_tokens_from_pyjwt(tmp_path, alg):
    secret = b"a shared secret of 32 bytes, ok!" * 2
    source = source_with(tmp_path, b64(secret).encode())   # websockify's (jwcrypto's) oct key form
    assert source.lookup(jwt.encode(CLAIMS, secret, algorithm=alg)).target == Target("10.0.0.7", 5901)
    assert "bad signature" in refusal(source, jwt.encode(CLAIMS, secret[:-1] + b"?", algorithm=alg))


def test_alg_none_is_refused(tmp_path, rsa_key):
    source = source_with(tmp_path, pem(rsa_key, "spki"))
    assert "alg none" in refusal(source, jwt.encode(CLAIMS, None, algorithm="none"))


def test_hmac_signed_with_the_public_key_pem_is_refused(tmp_path, rsa_key):
    """The algorithm-confusion forgery: anyone has the public key, so an HS256
    token keyed with its PEM must not pass where RS256 is expected."""
    public_pem = pem(rsa_key, "spki")
    source = source_with(tmp_path, public_pem)
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(CLAIMS).encode())
    signature = hmac.new(public_pem, ("%s.%s" % (head, body)).encode(), hashlib.sha256).digest()
    assert "does not fit the key" in refusal(source, "%s.%s.%s" % (head, body, b64(signature)))


def test_rs_token_for_an_hmac_key_is_refused(tmp_path, rsa_key):
    source = source_with(tmp_path, b64(b"x" * 32).encode())
    assert "does not fit the key" in refusal(source, jwt.encode(CLAIMS, rsa_key, algorithm="RS256"))


def test_tampered_and_foreign_signatures_are_refused(tmp_path, rsa_key):
    source = source_with(tmp_path, pem(rsa_key, "spki"))
    token = jwt.encode(CLAIMS, rsa_key, algorithm="RS256")
    head, body, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[-1] ^= 1
    assert "bad signature" in refusal(source, "%s.%s.%s" % (head, body, b64(bytes(raw))))
    forged = b64(json.dumps({"host": "10.6.6.6", "port": 22}).encode())
    assert "bad signature" in refusal(source, "%s.%s.%s" % (head, forged, signature))
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert "bad signature" in refusal(source, jwt.encode(CLAIMS, other, algorithm="RS256"))
    # a signature as long as the modulus but not below it, and one too short
    n = rsa_key.public_key().public_numbers().n
    assert "bad signature" in refusal(source, "%s.%s.%s" % (head, body, b64(n.to_bytes(256, "big"))))
    assert "bad signature" in refusal(source, "%s.%s.%s" % (head, body, b64(bytes(raw[:-1]))))
    # RS384's signature under an RS256 header
    token384 = jwt.encode(CLAIMS, rsa_key, algorithm="RS384")
    assert "bad signature" in refusal(source, "%s.%s.%s" % (head, body, token384.split(".")[2]))


def test_expired_and_not_yet_valid_tokens_are_refused(tmp_path, rsa_key):
    source = source_with(tmp_path, pem(rsa_key, "spki"))
    now = int(time.time())
    assert "expired" in refusal(source, jwt.encode(dict(CLAIMS, exp=now - 5), rsa_key, algorithm="RS256"))
    assert "not valid yet" in refusal(source, jwt.encode(dict(CLAIMS, nbf=now + 60), rsa_key, algorithm="RS256"))
    assert source.lookup(jwt.encode(dict(CLAIMS, nbf=now - 5, exp=now + 60), rsa_key, algorithm="RS256"))


def test_jwe_is_refused_with_a_reason(tmp_path, rsa_key):
    source = source_with(tmp_path, pem(rsa_key, "pkcs8"))
    header = b64(json.dumps({"alg": "RSA-OAEP", "enc": "A256GCM"}).encode())
    reason = refusal(source, "%s.%s.%s.%s.%s" % (header, b64(b"k" * 256), b64(b"iv" * 6), b64(b"c"), b64(b"t" * 16)))
    assert "encrypted tokens (JWE) are not supported" in reason


@pytest.mark.parametrize("make, why", [
    (lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024), "1024 bits"),
    (lambda: ec.generate_private_key(ec.SECP256R1()), "not an RSA key"),
])
def test_weak_or_unsupported_keys_stop_the_start(tmp_path, make, why):
    key = make()
    data = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(wsproxy.ConfigError, match=why):
        source_with(tmp_path, data)


# -- through the proxy ------------------------------------------------------------------------


def test_a_browser_reaches_the_target_a_jwt_names(tmp_path, rsa_key, start_proxy, echo_server):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect
    key = tmp_path / "public.pem"
    key.write_bytes(pem(rsa_key, "spki"))
    proxy = start_proxy("--token-plugin", "websockify.token_plugins.JWTTokenApi", "--token-source", str(key))
    assert "JWTs checked with %s (RSA)" % key in proxy.stdout
    good = jwt.encode({"host": "127.0.0.1", "port": echo_server.port, "exp": int(time.time()) + 60},
                      rsa_key, algorithm="RS256")
    with connect(proxy.url("/websockify?token=" + good), open_timeout=5) as ws:
        ws.send(b"RFB 003.008\n")
        assert ws.recv(timeout=5) == b"RFB 003.008\n"
    expired = jwt.encode({"host": "127.0.0.1", "port": echo_server.port, "exp": 1}, rsa_key, algorithm="RS256")
    with pytest.raises(InvalidStatus) as info:
        connect(proxy.url("/websockify?token=" + expired), open_timeout=5)
    assert info.value.response.status_code == 403
    assert b"token refused: token expired" in info.value.response.body
    assert expired not in proxy.stderr


def test_an_unusable_key_file_is_a_clear_startup_error(tmp_path):
    import subprocess
    import sys

    from conftest import free_port
    key = tmp_path / "jwt.key"
    key.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    result = subprocess.run([sys.executable, wsproxy.__file__, "--token-plugin", "JWTTokenApi", "--token-source",
                             str(key), "127.0.0.1:%d" % free_port()], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("wsproxy.py: error: JWTTokenApi --token-source %s: no RSA key" % key)
    assert "openssl x509 -pubkey" in result.stderr and "Traceback" not in result.stderr
