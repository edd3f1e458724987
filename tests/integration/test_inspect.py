"""vectord-inspect against WAL segments written here in Python from the byte
layout documented at the top of src/storage/wal_format.c, an independent
check of that documentation."""
import os
import struct
import subprocess
import tempfile

INSPECT = os.environ.get("VECTORD_INSPECT_BIN",
                         os.path.join(os.path.dirname(__file__), "../../build/vectord-inspect"))


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def header(salt):
    h = b"VECTDWAL" + struct.pack("<IIQ", 1, 32, salt)
    return h + struct.pack("<II", crc32c(h), 0)


def record(salt, lsn, rtype, body):
    rest = struct.pack("<QB3x", lsn, rtype) + body
    crc = crc32c(struct.pack("<Q", salt) + rest)
    return struct.pack("<II", len(body), crc) + rest


def run(data, *flags):
    with tempfile.NamedTemporaryFile(suffix=".log", delete=False) as f:
        f.write(data)
        path = f.name
    try:
        r = subprocess.run([INSPECT, *flags, path], capture_output=True, text=True, timeout=60)
        return r.returncode, r.stdout
    finally:
        os.unlink(path)


def test_clean_torn_corrupt_and_invalid():
    assert crc32c(b"123456789") == 0xE3069283
    salt = 0x1234_5678_9ABC_DEF0
    recs = [record(salt, 10 + i, 1, bytes([i]) * (i * 7)) for i in range(6)]
    seg = header(salt) + b"".join(recs)

    code, out = run(seg, "-v")
    assert code == 0, out
    assert "6 records, last lsn 15" in out and "verdict: clean" in out
    assert "lsn=12 type=1 offset=" in out

    code, out = run(seg + recs[0][:11])
    assert code == 1 and "verdict: torn tail" in out, out

    broken = bytearray(seg)
    broken[32 + len(recs[0]) + 9] ^= 0xFF  # inside record 2 of 6
    code, out = run(bytes(broken))
    assert code == 2 and "CORRUPT at offset" in out, out

    code, out = run(b"not a wal segment at all, but long enough to hold a header")
    assert code == 2 and "bad magic" in out, out

    other = record(salt + 1, 16, 1, b"x")  # a record salted for another segment
    code, out = run(seg + other)
    assert code == 1 and "6 records" in out, out


def test_usage():
    r = subprocess.run([INSPECT], capture_output=True, text=True, timeout=60)
    assert r.returncode == 64 and "usage" in r.stderr
