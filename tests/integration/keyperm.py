"""kgs's key permutation (kgs/keyperm.c) in Python, so tests can tell whether a key was made
from an index kgs claimed: keyperm_key() maps an index to its key, index_of() a key back to
its index. Checked against the C unit test's known answers in test_keys.py."""

import hashlib
import struct

ROUNDS = 10
HALF_BITS = 21
HALF_MASK = (1 << HALF_BITS) - 1
DOMAIN = 62 ** 7
B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
M64 = (1 << 64) - 1


def _rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & M64


def siphash24(key16, data):
    k0, k1 = struct.unpack("<QQ", key16)
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573

    def rounds(n):
        nonlocal v0, v1, v2, v3
        for _ in range(n):
            v0 = (v0 + v1) & M64; v1 = _rotl(v1, 13); v1 ^= v0; v0 = _rotl(v0, 32)
            v2 = (v2 + v3) & M64; v3 = _rotl(v3, 16); v3 ^= v2
            v0 = (v0 + v3) & M64; v3 = _rotl(v3, 21); v3 ^= v0
            v2 = (v2 + v1) & M64; v1 = _rotl(v1, 17); v1 ^= v2; v2 = _rotl(v2, 32)

    n = len(data)
    end = n - n % 8
    for i in range(0, end, 8):
        m = struct.unpack_from("<Q", data, i)[0]
        v3 ^= m
        rounds(2)
        v0 ^= m
    last = (n & 0xFF) << 56
    for i, byte in enumerate(data[end:]):
        last |= byte << (8 * i)
    v3 ^= last
    rounds(2)
    v0 ^= last
    v2 ^= 0xFF
    rounds(4)
    return (v0 ^ v1 ^ v2 ^ v3) & M64


def round_keys(secret):
    """libsodium's crypto_kdf_derive_from_key(16 bytes, i, "kgsperm1", secret)."""
    return [hashlib.blake2b(b"", digest_size=16, key=secret,
                            salt=struct.pack("<Q", i) + bytes(8),
                            person=b"kgsperm1" + bytes(8)).digest()
            for i in range(ROUNDS)]


def _f(key, half):
    return siphash24(key, struct.pack("<Q", half)) & HALF_MASK


def _feistel(keys, x):
    left, right = x >> HALF_BITS, x & HALF_MASK
    for k in keys:
        left, right = right, left ^ _f(k, right)
    return (left << HALF_BITS) | right


def _feistel_inverse(keys, y):
    left, right = y >> HALF_BITS, y & HALF_MASK
    for k in reversed(keys):
        left, right = right ^ _f(k, left), left
    return (left << HALF_BITS) | right


def apply(keys, index):
    x = _feistel(keys, index)
    while x >= DOMAIN:
        x = _feistel(keys, x)
    return x


def keyperm_key(keys, index):
    v = apply(keys, index)
    out = []
    for _ in range(7):
        out.append(B62[v % 62])
        v //= 62
    return "".join(reversed(out))


def index_of(keys, key):
    v = 0
    for c in key:
        v = v * 62 + B62.index(c)
    x = _feistel_inverse(keys, v)
    while x >= DOMAIN:
        x = _feistel_inverse(keys, x)
    return x
