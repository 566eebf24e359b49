#!/usr/bin/env python3
"""Clear the exception directory of a PE32+ image whose unwind tables were removed.

The Makefile links BOOTX64*.EFI with ilc's unwind tables (.pdata, .xdata) in a
section of their own, .unwind, and removes it with objcopy: nothing in the kernel
unwinds (no C# exceptions, no stack walks). objcopy keeps the optional header's
data directories as they were, so the exception directory (PE/COFF specification
3.4.3, entry 3) would still name the removed range; this sets it to zero.

usage: clear-unwind-directory.py IMAGE
"""
import struct
import sys

PE32_PLUS = 0x20B
EXCEPTION_TABLE = 3           # data directory index (PE/COFF 3.4.3)
PE32_PLUS_DIRECTORIES = 112   # offset of the data directories in a PE32+ optional header


def main(path):
    with open(path, "r+b") as f:
        image = bytearray(f.read())
        (pe,) = struct.unpack_from("<I", image, 0x3C)               # e_lfanew
        if image[pe:pe + 4] != b"PE\0\0":
            sys.exit(f"{path}: no PE signature")
        optional = pe + 4 + 20                                       # after the COFF file header
        (magic,) = struct.unpack_from("<H", image, optional)
        if magic != PE32_PLUS:
            sys.exit(f"{path}: not PE32+ (magic {magic:#x})")
        (count,) = struct.unpack_from("<I", image, optional + PE32_PLUS_DIRECTORIES - 4)
        if count <= EXCEPTION_TABLE:
            return
        entry = optional + PE32_PLUS_DIRECTORIES + 8 * EXCEPTION_TABLE
        struct.pack_into("<II", image, entry, 0, 0)
        f.seek(0)
        f.write(image)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[-1])
    main(sys.argv[1])
