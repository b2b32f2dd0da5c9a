"""A scripted RFB 3.8 server for the security types of web/core/security/ (test-only).

Written from rfbproto.rst, independently of the client: each type's server side
(VeNCrypt None/VncAuth/Plain, Tight, xvp, Apple Diffie-Hellman, MSLogonII,
RSA-AES Unencrypted), with its crypto from the `cryptography` package (test
dependency) and hashlib, so the browser client's own AES/DES/RSA/EAX/MD5/SHA-1
are checked against other implementations.  After a good login it sends a
64x48 ServerInit and one Raw update of COLOUR, then drains the client.

    server = SecurityServer("ard", users={"alice": "s3cret"}).start()
    ... connect to server.port ...
    server.logins  # [Login(username=..., password=..., ok=...)]
    server.close()
"""

import hashlib
import os
import socket
import struct
import threading

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

try:
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # cryptography < 43
    TripleDES = algorithms.TripleDES

WIDTH, HEIGHT = 64, 48
COLOUR = (10, 200, 30)
NAME = b"security-test"
# ServerInit pixel format: 32 bpp, depth 24, little-endian, true colour, R/G/B at 0/8/16
# (what the client asks for anyway, so the update below needs no conversion).
PIXEL_FORMAT = bytes([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 0, 8, 16, 0, 0, 0])

SECURITY_NUMBER = {"vencrypt": 19, "tight": 16, "xvp": 22, "ard": 30, "mslogon2": 113, "ra2ne": 6}
VENCRYPT_PLAIN = 256
# RFC 2409 Oakley group 2 (1024-bit MODP), generator 2: what macOS's ARD uses in size.
MODP_1024 = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF", 16)
PRIME_64 = 2 ** 64 - 59   # the largest 64-bit prime
REFUSED = b"invalid username or password"


class Login:
    def __init__(self):
        self.username = None
        self.password = None
        self.target = None
        self.vnc_ok = None   # VNC Authentication's response: right or wrong (None: not used)
        self.ok = False
        self.error = None

    def __repr__(self):
        return "Login(%r, %r, target=%r, vnc_ok=%r, ok=%r, error=%r)" % (
            self.username, self.password, self.target, self.vnc_ok, self.ok, self.error)


class ClientGone(Exception):
    pass


def recv_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ClientGone("client closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return data


def u32(conn):
    return struct.unpack(">I", recv_exact(conn, 4))[0]


def cstring(block):
    return block.split(b"\0", 1)[0].decode("utf-8")


# Single DES as three-key DES with one key three times (EDE of K, K, K is E of K):
# the form `cryptography` still supports without a deprecation warning.
def reverse_bits(key):
    return bytes(int("{:08b}".format(b)[::-1], 2) for b in key)


def des_ecb(key8, data):
    enc = Cipher(TripleDES(reverse_bits(key8) * 3), modes.ECB()).encryptor()
    return enc.update(data) + enc.finalize()


def des_cbc_decrypt(key8, iv, data):
    dec = Cipher(TripleDES(reverse_bits(key8) * 3), modes.CBC(iv)).decryptor()
    return dec.update(data) + dec.finalize()


def eax_tweak(key, t, data):
    mac = cmac.CMAC(algorithms.AES(key))
    mac.update(bytes(15) + bytes([t]) + data)
    return mac.finalize()


def eax_seal(key, nonce, header, plain):
    n, h = eax_tweak(key, 0, nonce), eax_tweak(key, 1, header)
    enc = Cipher(algorithms.AES(key), modes.CTR(n)).encryptor()
    c = enc.update(plain) + enc.finalize()
    tag = bytes(a ^ b ^ d for a, b, d in zip(eax_tweak(key, 2, c), n, h))
    return c + tag


def eax_open(key, nonce, header, cipher, tag):
    n, h = eax_tweak(key, 0, nonce), eax_tweak(key, 1, header)
    expect = bytes(a ^ b ^ d for a, b, d in zip(eax_tweak(key, 2, cipher), n, h))
    if expect != tag:
        raise ValueError("EAX tag mismatch")
    dec = Cipher(algorithms.AES(key), modes.CTR(n)).decryptor()
    return dec.update(cipher) + dec.finalize()


class SecurityServer:
    """KIND: vencrypt (SUBTYPE 1, 2 or 256), tight (TIGHT_AUTH 'none', 'vnc' or 'unix'),
    xvp, ard, mslogon2, ra2ne (RA2_SUBTYPE 1 = username and password, 2 = password).
    USERS maps username -> password; VncAuth checks PASSWORD."""

    def __init__(self, kind, users=None, password="secret", subtype=VENCRYPT_PLAIN, tight_auth="vnc",
                 ra2_subtype=1, connections=1, offer=None):
        self.kind, self.users, self.password = kind, users or {}, password
        self.subtype, self.tight_auth, self.ra2_subtype = subtype, tight_auth, ra2_subtype
        self.connections = connections
        self.offer = offer or [SECURITY_NUMBER[kind]]
        self.logins = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, name="rfb-security-%s" % kind, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def close(self):
        self.listener.close()
        self.thread.join(10)

    def _serve(self):
        for _ in range(self.connections):
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            login = Login()
            self.logins.append(login)
            with conn:
                conn.settimeout(30)
                try:
                    self._session(conn, login)
                except (ClientGone, OSError, ValueError, UnicodeDecodeError) as err:
                    login.error = "%s: %s" % (type(err).__name__, err)

    # ---- one connection

    def _session(self, conn, login):
        conn.sendall(b"RFB 003.008\n")
        recv_exact(conn, 12)
        conn.sendall(bytes([len(self.offer)] + self.offer))
        chosen = recv_exact(conn, 1)[0]
        if chosen != SECURITY_NUMBER[self.kind]:
            raise ValueError("client chose %d" % chosen)
        extra = getattr(self, "_auth_" + self.kind)(conn, login)
        login.ok = self._check(login)
        if not login.ok:
            conn.sendall(struct.pack(">II", 1, len(REFUSED)) + REFUSED)
            return
        conn.sendall(struct.pack(">I", 0))
        recv_exact(conn, 1)  # ClientInit
        conn.sendall(struct.pack(">HH16sI", WIDTH, HEIGHT, PIXEL_FORMAT, len(NAME)) + NAME + extra)
        pixel = bytes(COLOUR) + b"\0"
        conn.sendall(struct.pack(">BBHHHHHi", 0, 0, 1, 0, 0, WIDTH, HEIGHT, 0) + pixel * (WIDTH * HEIGHT))
        while conn.recv(65536):
            pass

    def _check(self, login):
        if login.vnc_ok is False:
            return False
        if login.username is not None and login.password is None:   # xvp: a known user
            return login.username in self.users
        if login.username is not None:
            return self.users.get(login.username) == login.password
        if login.password is not None:                               # RA2ne password only
            return login.password == self.password
        return True                                                  # None, or VncAuth passed

    def _vnc_auth(self, conn, login):
        challenge = os.urandom(16)
        conn.sendall(challenge)
        response = recv_exact(conn, 16)
        login.vnc_ok = des_ecb(self.password.encode()[:8].ljust(8, b"\0"), challenge) == response

    # ---- the types

    def _auth_vencrypt(self, conn, login):
        conn.sendall(b"\x00\x02")
        if recv_exact(conn, 2) != b"\x00\x02":
            raise ValueError("VeNCrypt version")
        conn.sendall(b"\x00" + struct.pack(">BI", 1, self.subtype))
        chosen = u32(conn)
        if chosen != self.subtype:
            raise ValueError("client chose subtype %d" % chosen)
        if chosen == VENCRYPT_PLAIN:
            ulen, plen = struct.unpack(">II", recv_exact(conn, 8))
            login.username = recv_exact(conn, ulen).decode()
            login.password = recv_exact(conn, plen).decode()
        elif chosen == 2:
            self._vnc_auth(conn, login)
        return b""

    def _auth_tight(self, conn, login):
        conn.sendall(struct.pack(">Ii4s8s", 1, 0, b"TGHT", b"NOTUNNEL"))
        if struct.unpack(">i", recv_exact(conn, 4))[0] != 0:
            raise ValueError("tunnel")
        caps = {"none": (1, b"STDV", b"NOAUTH__"), "vnc": (2, b"STDV", b"VNCAUTH_"),
                "unix": (129, b"TGHT", b"ULGNAUTH")}
        conn.sendall(struct.pack(">I", 1) + struct.pack(">i4s8s", *caps[self.tight_auth]))
        code = struct.unpack(">i", recv_exact(conn, 4))[0]
        if code != caps[self.tight_auth][0]:
            raise ValueError("auth code %d" % code)
        if self.tight_auth == "vnc":
            self._vnc_auth(conn, login)
        elif self.tight_auth == "unix":
            ulen, plen = struct.unpack(">II", recv_exact(conn, 8))
            login.username = recv_exact(conn, ulen).decode()
            login.password = recv_exact(conn, plen).decode()
        # ServerInit's interaction capabilities: 1 server message, 1 client message, 2 encodings.
        caps = [(150, b"TGHT", b"CUS_EOCU"), (150, b"TGHT", b"CUC_ENCU"), (7, b"TGHT", b"TIGHT___"),
                (-260, b"TGHT", b"TIGHTPNG")]
        return struct.pack(">HHHH", 1, 1, 2, 0) + b"".join(struct.pack(">i4s8s", *c) for c in caps)

    def _auth_xvp(self, conn, login):
        ulen, tlen = recv_exact(conn, 2)
        login.username = recv_exact(conn, ulen).decode()
        login.target = recv_exact(conn, tlen).decode()
        self._vnc_auth(conn, login)
        return b""

    def _auth_ard(self, conn, login):
        secret = int.from_bytes(os.urandom(64), "big") % (MODP_1024 - 3) + 2
        conn.sendall(struct.pack(">HH", 2, 128) + MODP_1024.to_bytes(128, "big")
                     + pow(2, secret, MODP_1024).to_bytes(128, "big"))
        encrypted = recv_exact(conn, 128)
        client_public = int.from_bytes(recv_exact(conn, 128), "big")
        shared = pow(client_public, secret, MODP_1024).to_bytes(128, "big")
        dec = Cipher(algorithms.AES(hashlib.md5(shared).digest()), modes.ECB()).decryptor()
        plain = dec.update(encrypted) + dec.finalize()
        login.username, login.password = cstring(plain[:64]), cstring(plain[64:])
        return b""

    def _auth_mslogon2(self, conn, login):
        generator = 5
        secret = int.from_bytes(os.urandom(8), "big") % (PRIME_64 - 3) + 2
        conn.sendall(generator.to_bytes(8, "big") + PRIME_64.to_bytes(8, "big")
                     + pow(generator, secret, PRIME_64).to_bytes(8, "big"))
        client_public = int.from_bytes(recv_exact(conn, 8), "big")
        shared = pow(client_public, secret, PRIME_64).to_bytes(8, "big")
        login.username = cstring(des_cbc_decrypt(shared, shared, recv_exact(conn, 256)))
        login.password = cstring(des_cbc_decrypt(shared, shared, recv_exact(conn, 64)))
        return b""

    def _auth_ra2ne(self, conn, login):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = key.public_key().public_numbers()
        server_public = struct.pack(">I", 2048) + numbers.n.to_bytes(256, "big") + numbers.e.to_bytes(256, "big")
        conn.sendall(server_public)
        bits = u32(conn)
        size = (bits + 7) // 8
        client_n, client_e = recv_exact(conn, size), recv_exact(conn, size)
        client_public = struct.pack(">I", bits) + client_n + client_e
        client_key = rsa.RSAPublicNumbers(int.from_bytes(client_e, "big"), int.from_bytes(client_n, "big")).public_key()
        server_random = os.urandom(16)
        cipher = client_key.encrypt(server_random, padding.PKCS1v15())
        conn.sendall(struct.pack(">H", len(cipher)) + cipher)
        length = struct.unpack(">H", recv_exact(conn, 2))[0]
        client_random = key.decrypt(recv_exact(conn, length), padding.PKCS1v15())
        channel = Ra2Channel(conn, hashlib.sha1(client_random + server_random).digest()[:16],
                             hashlib.sha1(server_random + client_random).digest()[:16])
        channel.send(hashlib.sha1(server_public + client_public).digest())
        if channel.recv() != hashlib.sha1(client_public + server_public).digest():
            raise ValueError("client hash")
        channel.send(bytes([self.ra2_subtype]))
        creds = channel.recv()
        ulen = creds[0]
        user = creds[1:1 + ulen].decode()
        login.password = creds[2 + ulen:2 + ulen + creds[1 + ulen]].decode()
        login.username = user if self.ra2_subtype == 1 else None
        return b""


class Ra2Channel:
    """The RSA-AES message layer, server side: send with the server key, receive with the client's."""

    def __init__(self, conn, send_key, recv_key):
        self.conn, self.send_key, self.recv_key = conn, send_key, recv_key
        self.sent = self.received = 0

    def send(self, plain):
        header = struct.pack(">H", len(plain))
        self.conn.sendall(header + eax_seal(self.send_key, self.sent.to_bytes(16, "little"), header, plain))
        self.sent += 1

    def recv(self):
        header = recv_exact(self.conn, 2)
        length = struct.unpack(">H", header)[0]
        cipher, tag = recv_exact(self.conn, length), recv_exact(self.conn, 16)
        plain = eax_open(self.recv_key, self.received.to_bytes(16, "little"), header, cipher, tag)
        self.received += 1
        return plain
