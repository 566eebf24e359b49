#!/usr/bin/env python3
"""Fit the headers of a UEFI application (PE32+) into one 512-byte file-alignment unit.

The Makefile runs this after each objcopy of BOOTX64*.EFI. objcopy writes the headers
anew: a 128-byte MS-DOS header and stub, then the PE signature, the COFF file header,
the PE32+ optional header with its sixteen data directories (264 bytes) and the four
section headers (160 bytes), 552 bytes, which SizeOfHeaders rounds up to 1 KiB
(FileAlignment is 512: PE/COFF specification 3.4.2). In place, this

- replaces the MS-DOS stub with a smaller one, so that the PE headers start at 0x48
  instead of 0x80 and end at 496 bytes. The stub is "a valid application that runs
  under MS-DOS" that the linker places first and the user may replace (2.1): this
  one ends with exit status 1 (INT 21h function 4Ch) instead of printing "This
  program cannot be run in DOS mode" first; offset 0x3C gives the PE signature's
  file offset (2.1, 2.2), 8-byte aligned as lld-link aligns it after a /stub;
- sets SizeOfHeaders to the headers' size rounded up to FileAlignment (3.4.2: 512)
  and moves the sections' raw data, and the COFF symbol table if there is one, down
  by what the headers lost (PointerToRawData, PointerToSymbolTable). Nothing else
  changes: FileAlignment, SectionAlignment, the sixteen data directories, the
  sections' addresses and sizes, the image's size;
- clears the exception directory (3.4.3, entry 3): the Makefile links ilc's unwind
  tables (.pdata, .xdata) into a section of their own, .unwind, and objcopy removes
  it (nothing in the kernel unwinds) but leaves the directory naming the range;
- zeroes CheckSum (3.4.2), which objcopy computed over the old bytes: lld-link leaves
  it zero too, and only Windows checks it (drivers, boot-time and critical DLLs).

usage: trim-headers.py IMAGE
"""
import struct
import sys

PE32_PLUS = 0x20B
EXCEPTION_TABLE = 3            # data directory index (PE/COFF 3.4.3)
# PE32+ optional header (3.4): offsets of the fields read or written
FILE_ALIGNMENT, SIZE_OF_HEADERS, CHECKSUM, DATA_DIRECTORIES = 36, 60, 64, 112
SECTION_HEADER = 40            # bytes (4)
POINTER_TO_RAW_DATA = 20       # in a section header
PE_SIGNATURE_OFFSET = 0x3C     # e_lfanew

# The MS-DOS program: mov ax, 4C01h; int 21h (terminate with return code 1).
DOS_PROGRAM = bytes([0xB8, 0x01, 0x4C, 0xCD, 0x21])
DOS_HEADER = 64                # the MZ header, in 16-byte paragraphs: 4
PE_HEADERS = (DOS_HEADER + len(DOS_PROGRAM) + 7) & ~7


def dos_stub():
    """The MZ header and program, up to PE_HEADERS: the header's fields as lld-link
    writes them for its own stub but for the load module's size (header + program)."""
    size = DOS_HEADER + len(DOS_PROGRAM)
    header = struct.pack("<2s13H", b"MZ",
                         size % 512, (size + 511) // 512,   # e_cblp, e_cp: bytes in the last 512-byte page, pages
                         0, DOS_HEADER // 16,              # e_crlc (no relocations), e_cparhdr
                         0, 0xFFFF, 0, 0xB8, 0,            # e_minalloc, e_maxalloc, e_ss, e_sp, e_csum
                         0, 0, DOS_HEADER, 0)              # e_ip, e_cs (the program's first byte), e_lfarlc, e_ovno
    header = header.ljust(PE_SIGNATURE_OFFSET, b"\0") + struct.pack("<I", PE_HEADERS)
    return (header + DOS_PROGRAM).ljust(PE_HEADERS, b"\0")


def trim(image, path):
    (pe,) = struct.unpack_from("<I", image, PE_SIGNATURE_OFFSET)
    if image[pe:pe + 4] != b"PE\0\0":
        sys.exit(f"{path}: no PE signature")
    coff = pe + 4
    optional = coff + 20                                             # after the COFF file header (3.3)
    sections, pointer_to_symbols = struct.unpack_from("<H4xI", image, coff + 2)   # NumberOfSections, PointerToSymbolTable
    (optional_size,) = struct.unpack_from("<H", image, coff + 16)
    (magic,) = struct.unpack_from("<H", image, optional)
    if magic != PE32_PLUS:
        sys.exit(f"{path}: not PE32+ (magic {magic:#x})")
    (file_alignment,) = struct.unpack_from("<I", image, optional + FILE_ALIGNMENT)
    (old_headers,) = struct.unpack_from("<I", image, optional + SIZE_OF_HEADERS)
    struct.pack_into("<II", image, optional + DATA_DIRECTORIES + 8 * EXCEPTION_TABLE, 0, 0)
    struct.pack_into("<I", image, optional + CHECKSUM, 0)

    pe_headers = bytes(image[pe:optional + optional_size + SECTION_HEADER * sections])
    headers_end = PE_HEADERS + len(pe_headers)
    new_headers = -(-headers_end // file_alignment) * file_alignment
    if new_headers > old_headers:
        sys.exit(f"{path}: {headers_end} bytes of headers do not fit in the {old_headers} the file has")
    image[:old_headers] = (dos_stub() + pe_headers).ljust(old_headers, b"\0")

    # Everything after the headers moves down by the same amount.
    shift = old_headers - new_headers
    coff, optional = coff - pe + PE_HEADERS, optional - pe + PE_HEADERS
    table = optional + optional_size
    for s in range(sections):
        field = table + SECTION_HEADER * s + POINTER_TO_RAW_DATA
        (raw,) = struct.unpack_from("<I", image, field)
        if raw != 0 and raw < old_headers:
            sys.exit(f"{path}: section {s + 1}'s raw data at {raw:#x} is inside the headers ({old_headers:#x} bytes)")
        if raw != 0:
            struct.pack_into("<I", image, field, raw - shift)
    if pointer_to_symbols != 0:
        struct.pack_into("<I", image, coff + 8, pointer_to_symbols - shift)
    struct.pack_into("<I", image, optional + SIZE_OF_HEADERS, new_headers)
    del image[new_headers:old_headers]


def main(path):
    with open(path, "r+b") as f:
        image = bytearray(f.read())
        trim(image, path)
        f.seek(0)
        f.write(image)
        f.truncate()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[-1])
    main(sys.argv[1])
