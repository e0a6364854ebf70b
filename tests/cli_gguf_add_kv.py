#!/usr/bin/env python3
"""Copies a GGUF file (v2/v3) with one more string key, e.g. a chat template:
    cli_gguf_add_kv.py IN.gguf OUT.gguf tokenizer.chat_template "{{ ... }}"
The tensor data is copied as is (tensor offsets are relative to the data section)."""
import struct, sys

src, dst, key, value = sys.argv[1:5]
b = open(src, "rb").read()
assert b[:4] == b"GGUF", "not a GGUF file"
version, n_tensors, n_kv = struct.unpack_from("<IQQ", b, 4)
assert version in (2, 3), "GGUF version %d" % version
pos = 24
SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

def skip_value(t, p):
    if t in SIZES:
        return p + SIZES[t]
    if t == 8:  # string
        (n,) = struct.unpack_from("<Q", b, p)
        return p + 8 + n
    if t == 9:  # array: element type, count, elements
        et, n = struct.unpack_from("<IQ", b, p)
        p += 12
        if et in SIZES:
            return p + n * SIZES[et]
        for _ in range(n):
            p = skip_value(et, p)
        return p
    raise ValueError("unknown GGUF type %d" % t)

alignment = 32
for _ in range(n_kv):
    (n,) = struct.unpack_from("<Q", b, pos)
    name = b[pos + 8:pos + 8 + n].decode()
    pos += 8 + n
    (t,) = struct.unpack_from("<I", b, pos)
    if name == "general.alignment":
        (alignment,) = struct.unpack_from("<I", b, pos + 4)
    pos = skip_value(t, pos + 4)
    assert name != key, "the file already has " + key
kv_end = pos
for _ in range(n_tensors):
    (n,) = struct.unpack_from("<Q", b, pos)
    pos += 8 + n
    (n_dims,) = struct.unpack_from("<I", b, pos)
    pos += 4 + 8 * n_dims + 4 + 8
infos_end = pos
data_start = (infos_end + alignment - 1) // alignment * alignment

kb, vb = key.encode(), value.encode()
new_kv = struct.pack("<Q", len(kb)) + kb + struct.pack("<IQ", 8, len(vb)) + vb
head = b[:4] + struct.pack("<IQQ", version, n_tensors, n_kv + 1) + b[24:kv_end] + new_kv + b[kv_end:infos_end]
head += b"\0" * ((-len(head)) % alignment)
open(dst, "wb").write(head + b[data_start:])
