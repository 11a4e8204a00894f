"""The library half of chain_main.py's call chain: middle → recurse (RECURSION_DEPTH frames) → inner, and
the hot functions of this file: spin_lib (pure Python) and hash_block (hashlib on 1 MiB, so OpenSSL's
SHA-256 runs below it, with the GIL released).

Every call below is on a line of its own, so that a profiler's line for a calling frame can be checked
against traceback.extract_stack().
"""
import hashlib

RECURSION_DEPTH = 12
BLOCK = bytes(range(256)) * 4096  # 1 MiB


def spin_lib(rounds):
    total = 0
    for value in range(rounds):
        total = (total * 31 + value) & 0xFFFFFFFF
    return total


def hash_block(times):
    digest = b""
    for _ in range(times):
        digest = hashlib.sha256(BLOCK).digest()
    return digest


def inner(spin_main, report_stack, work):
    report_stack()
    checksum = spin_main(work.main_rounds)
    checksum ^= spin_lib(work.lib_rounds)
    checksum ^= hash_block(work.hashes)[0]
    return checksum


def recurse(depth, spin_main, report_stack, work):
    if depth > 1:
        return recurse(depth - 1, spin_main, report_stack, work)
    return inner(spin_main, report_stack, work)


def middle(spin_main, report_stack, work):
    checksum = recurse(RECURSION_DEPTH, spin_main, report_stack, work)
    return checksum
