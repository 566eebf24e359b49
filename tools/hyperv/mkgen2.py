#!/usr/bin/env python3
"""tools/hyperv/mkgen2.py: build/gen2.img, the boot disk of a Hyper-V Generation 2 VM.

    mkgen2.py OUT.img BOOTX64.EFI "COMMAND LINE"

A GPT disk (UEFI 2.10, 5.3) of 48 MiB with one EFI System Partition (5.3.3,
type C12A7328-F81F-11D2-BA4B-00A0C93EC93B) from 1 MiB to 1 MiB before the end,
FAT32-formatted with mtools (13.3.1.1: FAT32 for a system partition), holding
EFI/BOOT/BOOTX64.EFI, the removable-media boot path (3.5.1.1) that firmware
takes with no boot entries, and EFI/BOOT/CMDLINE.TXT, the kernel command line
(kernel/arch/EfiBoot.cs). No root, no loop devices: the partition table is
written here (Python's zlib gives the CRC32s), the file system with mtools'
`-i image@@offset`. GUIDs are fixed so that the image is reproducible.
"""
import os, struct, subprocess, sys, tempfile, uuid, zlib

SECTOR = 512
DISK_BYTES = 48 << 20
ESP_FIRST = 2048                                   # 1 MiB, aligned
ESP_LAST = DISK_BYTES // SECTOR - 2048 - 1         # a 1 MiB gap before the backup GPT
ENTRIES, ENTRY_SIZE = 128, 128
ESP_TYPE = uuid.UUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
DISK_GUID = uuid.UUID("6A1C0C2E-5C1B-4A8B-9E3C-6E2D6B0A4E01")
ESP_GUID = uuid.UUID("6A1C0C2E-5C1B-4A8B-9E3C-6E2D6B0A4E02")


def gpt_header(current, backup, entries_lba, entries_crc, last_lba):
    fields = [b"EFI PART", 0x00010000, 92, 0, 0, current, backup,
              34, last_lba - 33, DISK_GUID.bytes_le, entries_lba, ENTRIES, ENTRY_SIZE, entries_crc]
    fmt = "<8sIIII QQ QQ 16s QII I"
    header = struct.pack(fmt, *fields)
    fields[3] = zlib.crc32(header)
    return struct.pack(fmt, *fields).ljust(SECTOR, b"\0")


def main():
    out, efi, cmdline = sys.argv[1], sys.argv[2], sys.argv[3]
    last_lba = DISK_BYTES // SECTOR - 1
    entry = struct.pack("<16s16sQQQ72s", ESP_TYPE.bytes_le, ESP_GUID.bytes_le, ESP_FIRST, ESP_LAST, 0,
                        "EFI System Partition".encode("utf-16-le"))
    entries = entry.ljust(ENTRIES * ENTRY_SIZE, b"\0")
    crc = zlib.crc32(entries)
    # Protective MBR (UEFI 2.10 5.2.3): one partition of type 0xEE covering the disk.
    mbr = bytearray(SECTOR)
    mbr[446:462] = struct.pack("<B3sB3sII", 0, b"\x00\x02\x00", 0xEE, b"\xff\xff\xff", 1, min(last_lba, 0xFFFFFFFF))
    mbr[510:512] = b"\x55\xaa"
    with open(out, "wb") as f:
        f.truncate(DISK_BYTES)
        f.write(mbr)
        f.write(gpt_header(1, last_lba, 2, crc, last_lba))
        f.write(entries)
        f.seek((last_lba - 32) * SECTOR)
        f.write(entries)
        f.write(gpt_header(last_lba, 1, last_lba - 32, crc, last_lba))
    part = f"{out}@@{ESP_FIRST * SECTOR}"
    sectors = ESP_LAST - ESP_FIRST + 1
    run = lambda *args: subprocess.run(args, check=True)
    run("mformat", "-i", part, "-F", "-T", str(sectors), "-h", "64", "-s", "32", "-H", str(ESP_FIRST), "-v", "GEN2ESP", "::")
    run("mmd", "-i", part, "::/EFI", "::/EFI/BOOT")
    run("mcopy", "-i", part, efi, "::/EFI/BOOT/BOOTX64.EFI")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(cmdline + "\n")
    try:
        run("mcopy", "-i", part, f.name, "::/EFI/BOOT/CMDLINE.TXT")
    finally:
        os.unlink(f.name)


if __name__ == "__main__":
    main()
