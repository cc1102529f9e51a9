#!/usr/bin/env python3
"""Writes hostile seed inputs for the libFuzzer targets (issue 13) into OUT/TARGET/: small
versions of the inputs that once exhausted memory or time, so every fuzzing run starts from
them. Generated on each run (tools/fuzz), never committed.

    traces/fuzz/make_seeds.py build/fuzz/seeds
"""
import gzip
import os
import sqlite3
import sys
import tempfile

MAX_LEN = 65536  # tools/fuzz's -max_len: a seed must fit whole


def pickle_memo_bomb(levels=3, width=1000):
    """Lists of `width` references to the list before: width^levels values walked as a tree."""
    out = bytearray(b"\x80\x04\x8c\x01x\x94" + b"0")
    for level in range(levels):
        out += b"]\x94(" + (b"h" + bytes([level])) * width + b"e"
        if level + 1 < levels:
            out += b"0"
    return bytes(out + b".")


def pickle_nested(depth):
    return b"\x80\x04" + b"]" * depth + b"a" * (depth - 1) + b"."


def seeds():
    yield "pytorch", "memo-bomb.pickle", pickle_memo_bomb()
    yield "pytorch", "nested-12000.pickle", pickle_nested(12000)
    yield "pytorch", "marks-12000.pickle", b"\x80\x04" + b"(" * 12000 + b"."
    yield "pytorch", "cycle.pickle", b"\x80\x04]\x94h\x00a."
    yield "pytorch", "nones.pickle", b"\x80\x04](" + b"N" * 60000 + b"e."
    yield "pytorch", "long1-max.pickle", b"\x80\x04\x8a\x09" + b"\xff" * 8 + b"\x00."
    # "h\x00" repeated inside APPENDS, gzip-compressed: megabytes from a few kilobytes.
    body = b"\x80\x04\x8c\x01x\x94](" + b"h\x00" * (24 << 20) + b"e."
    yield "pytorch", "memo-refs.pickle.gz", gzip.compress(body, 9)
    yield "canonical", "zeros.gz", gzip.compress(b"\0" * (48 << 20), 9)
    yield "canonical", "long-line.trace.gz", gzip.compress(
        b"memtrack-trace 1\nevents\nalloc gpu:0 " + b"9" * (48 << 20) + b"\n", 9)
    gpus = "".join(f"gpu {i} total=1\n" for i in range(1100))
    yield "canonical", "many-gpus.trace", f"memtrack-trace 1\n{gpus}events\nend 0\n".encode()
    header = "Thread,Time,Action,Pointer,Size,Stream\n"
    yield "rmm", "bad-stream.csv", (header + "1,22:30:49.650739,allocate,0x7f00,1024,zz\n").encode()
    yield "rmm", "cut.csv", (header + "1,22:30:49.650739,allocate,0x7f00,1024,0x").encode()
    yield "kineto", "nested.json", b"[" * 20000 + b"]" * 20000
    for name, data in nsight_seeds():
        yield "nsight", name, data


def nsight_seeds():
    """An export whose bytes column holds text, and the same cut by one byte."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "r.sqlite")
        db = sqlite3.connect(path)
        db.executescript(
            "CREATE TABLE ENUM_CUDA_MEM_KIND (id INTEGER PRIMARY KEY, name TEXT);"
            "INSERT INTO ENUM_CUDA_MEM_KIND VALUES (3, 'CUDA_MEMOPR_MEMORY_KIND_DEVICE');"
            "CREATE TABLE ENUM_CUDA_DEV_MEM_EVENT_OPER (id INTEGER PRIMARY KEY, name TEXT);"
            "INSERT INTO ENUM_CUDA_DEV_MEM_EVENT_OPER VALUES "
            "(9, 'CUDA_DEV_MEM_EVENT_OPR_ALLOCATION');"
            "CREATE TABLE CUDA_GPU_MEMORY_USAGE_EVENTS (start INT, deviceId INT, address INT, "
            "bytes INT, memKind INT, memoryOperationType INT);"
            "INSERT INTO CUDA_GPU_MEMORY_USAGE_EVENTS VALUES (1, 0, 4096, '1048576abc', 3, 9);"
            "INSERT INTO CUDA_GPU_MEMORY_USAGE_EVENTS VALUES (2, 'gpu0', 8192, 1.5e30, 3, 9);")
        db.commit()
        db.close()
        with open(path, "rb") as f:
            data = f.read()
    yield "text-bytes.sqlite", data
    yield "cut.sqlite", data[:-1]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for target, name, data in seeds():
        if len(data) > MAX_LEN:
            sys.exit(f"make_seeds: {target}/{name} is {len(data)} bytes, over -max_len {MAX_LEN}")
        folder = os.path.join(sys.argv[1], target)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
