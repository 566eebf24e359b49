using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Xunit;

namespace Kernel.Tests;

// The UEFI build (issue 5, a Hyper-V Generation 2 VM): build/BOOTX64.EFI,
// build/gen2.img (GPT + FAT32 ESP) and build/gen2.vhdx, from `make image`.
public static class UefiImage
{
    public const long EspOffset = 1 << 20;          // tools/hyperv/mkgen2.py: the ESP starts at LBA 2048
    public static string Efi => Path.Combine(Repo.Root, "build", "BOOTX64.EFI");
    public static string Disk => Path.Combine(Repo.Root, "build", "gen2.img");
    public static string Vhdx => Path.Combine(Repo.Root, "build", "gen2.vhdx");

    private static readonly Lazy<bool> s_built = new(() =>
    {
        Repo.EnsureKernelBuilt();                    // first, so that the two builds never share obj/ at once
        var r = Repo.Run("make", "-s image", TimeSpan.FromMinutes(5));
        if (r.ExitCode != 0) throw new InvalidOperationException("make image failed:\n" + r.Output);
        return true;
    });

    public static void EnsureBuilt() => _ = s_built.Value;

    public static string Map => Path.Combine(Repo.Root, "build", "BOOTX64.map");

    // A symbol's offset in the image, from lld-link's /map: its "Rva+Base" column
    // less the "Preferred load address" the image was linked at.
    public static ulong MapRva(string symbol)
    {
        EnsureBuilt();
        string map = File.ReadAllText(Map);
        var preferred = Regex.Match(map, @"Preferred load address is ([0-9a-fA-F]+)");
        var entry = Regex.Match(map, @"^\s*[0-9a-fA-F]{4}:[0-9a-fA-F]{8}\s+" + Regex.Escape(symbol) + @"\s+([0-9a-fA-F]{16})\s", RegexOptions.Multiline);
        if (!preferred.Success || !entry.Success) throw new InvalidDataException($"{Map}: no preferred load address or no '{symbol}'");
        return Convert.ToUInt64(entry.Groups[1].Value, 16) - Convert.ToUInt64(preferred.Groups[1].Value, 16);
    }

}

// The Gen2 image under nested KVM with Hyper-V enlightenments (OVMF, one VP):
// the Hyper-V tests run, and give exactly the results of the direct boot.
public sealed class UefiGuestTestsNested : NestedGuestBootTests<UefiGuestTestsNested>, IGuestBoot
{
    public static GuestBoot Boot { get; } = new("--uefi --mode nested --test");

    [Fact]
    public void HyperVResultsMatchTheDirectBoot() => DirectBranch.AssertSameHyperVResultsOnStock(GuestTestsNested.Boot, Boot);
}

// One OVMF boot (TCG, two VPs) in test mode.
public sealed class UefiGuestTestsTcg : GuestBootTests<UefiGuestTestsTcg>, IGuestBoot
{
    public static GuestBoot Boot { get; } = new("--uefi --mode tcg --smp 2 --test");

    // The run really came through the firmware: the UEFI entry, the image where the
    // firmware put it (not the ELF's 1 MiB, and as LoadedImage reports it), the
    // command line from the ESP, an RSDP from the configuration table, and the AP.
    [Fact]
    public void BootedThroughUefi()
    {
        var output = Run.Process.Stdout;
        Assert.Contains("C# Hyper-V guest: booting (UEFI)", output);
        var image = Regex.Match(output, @"efi: image at 0x([0-9a-f]+)-0x([0-9a-f]+) \(LoadedImage says 0x([0-9a-f]+)\), ExitBootServices on attempt (\d+)");
        Assert.True(image.Success, "no 'efi: image at' line:\n" + output);
        ulong start = Convert.ToUInt64(image.Groups[1].Value, 16), end = Convert.ToUInt64(image.Groups[2].Value, 16);
        Assert.NotEqual(0x100000ul, start);
        Assert.Equal(start, Convert.ToUInt64(image.Groups[3].Value, 16));
        Assert.True(end > start && end <= 1ul << 32 && start % 4096 == 0, $"image bounds {start:x}-{end:x}");
        var map = Regex.Match(output, @"efi: memory map of (\d+) descriptors \((\d+) bytes each\), ACPI RSDP at 0x([0-9a-f]+)");
        Assert.True(map.Success, "no 'efi: memory map' line:\n" + output);
        Assert.True(int.Parse(map.Groups[1].Value) > 10);
        Assert.NotEqual("0", map.Groups[3].Value);
        Assert.DoesNotContain("efi: warning", output);
        Assert.Contains("command line: \"test\"", output);
        Assert.Contains("smp: VP 1 online", output);
    }
}

// One more OVMF boot, not in test mode, shaped like a Hyper-V VM: no isa-debug-exit.
// Its command line is `efi-stale-key`, which makes the firmware's memory map change
// between GetMemoryMap and the first ExitBootServices (kernel/arch/EfiBoot.cs).
public class UefiPlainBoot
{
    private static readonly Lazy<Repo.Result> s_run = new(Boot);

    private static Repo.Result Boot()
    {
        UefiImage.EnsureBuilt();
        var dir = Directory.CreateTempSubdirectory("uefi-plain");
        try
        {
            string vars = Path.Combine(dir.FullName, "vars.fd"), disk = Path.Combine(dir.FullName, "disk.img"), cmd = Path.Combine(dir.FullName, "cmdline.txt");
            File.Copy("/usr/share/OVMF/OVMF_VARS.fd", vars);
            File.Copy(UefiImage.Disk, disk);
            File.WriteAllText(cmd, "efi-stale-key\n");
            var m = Repo.Run("mcopy", $"-o -i {disk}@@{UefiImage.EspOffset} {cmd} ::/EFI/BOOT/CMDLINE.TXT", TimeSpan.FromSeconds(30));
            if (m.ExitCode != 0) throw new InvalidOperationException("mcopy failed:\n" + m.Output);
            // The pinned QEMU, as qemu-run.sh runs it by default.
            return Repo.Run("timeout", $"60 {PinnedQemu.Binary} {PinnedQemu.DataArguments} -accel tcg -machine q35 -m 256 -display none -no-reboot -nodefaults -monitor none"
                + " -drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd"
                + $" -drive if=pflash,format=raw,file={vars} -drive if=none,id=d,format=raw,file={disk}"
                + " -device ahci,id=ahci -device ide-hd,drive=d,bus=ahci.0 -serial stdio -trace qemu_system_shutdown_request",
                TimeSpan.FromMinutes(2), PinnedQemu.Environment);
        }
        finally { dir.Delete(recursive: true); }
    }

    // With no debug-exit device the kernel powers off through the firmware's
    // ResetSystem(EfiResetShutdown); QEMU's trace names the cause: ShutdownCause 6
    // is SHUTDOWN_CAUSE_GUEST_SHUTDOWN (a triple fault under -no-reboot is 7, GUEST_RESET).
    [Fact]
    public void NoDebugExitPowersOffThroughResetSystem()
    {
        var r = s_run.Value;
        Assert.True(r.ExitCode == 0, $"QEMU exited {r.ExitCode}:\n{r.Output}");
        Assert.Contains("boot complete", r.Stdout);
        Assert.Contains("qemu_system_shutdown_request reason=6", r.Output);
    }

    // A stale map key makes ExitBootServices fail (UEFI 2.10 7.4); the kernel reads the map again and retries.
    [Fact]
    public void StaleMapKeyIsRetried() => Assert.Contains("ExitBootServices on attempt 2", s_run.Value.Stdout);
}

// The artifacts, checked on the host.
public class UefiArtifactTests
{
    public UefiArtifactTests() => UefiImage.EnsureBuilt();

    // PE/COFF specification 3 and 3.4: a PE32+ image for x64, EFI application
    // subsystem, an entry point, and base relocations (firmware loads it anywhere).
    [Fact]
    public void BootX64IsAnEfiApplication()
    {
        var pe = File.ReadAllBytes(UefiImage.Efi);
        Assert.Equal((byte)'M', pe[0]);
        Assert.Equal((byte)'Z', pe[1]);
        int header = BinaryPrimitives.ReadInt32LittleEndian(pe.AsSpan(0x3C));
        Assert.Equal(0x00004550u, BinaryPrimitives.ReadUInt32LittleEndian(pe.AsSpan(header)));
        Assert.Equal(0x8664, BinaryPrimitives.ReadUInt16LittleEndian(pe.AsSpan(header + 4)));
        int optional = header + 24;
        Assert.Equal(0x20B, BinaryPrimitives.ReadUInt16LittleEndian(pe.AsSpan(optional)));         // PE32+
        Assert.NotEqual(0u, BinaryPrimitives.ReadUInt32LittleEndian(pe.AsSpan(optional + 16)));    // AddressOfEntryPoint
        Assert.Equal(10, BinaryPrimitives.ReadUInt16LittleEndian(pe.AsSpan(optional + 68)));        // IMAGE_SUBSYSTEM_EFI_APPLICATION
        int relocDirectory = optional + 112 + 5 * 8;                                                 // data directory 5: base relocations
        Assert.NotEqual(0u, BinaryPrimitives.ReadUInt32LittleEndian(pe.AsSpan(relocDirectory)));
        Assert.NotEqual(0u, BinaryPrimitives.ReadUInt32LittleEndian(pe.AsSpan(relocDirectory + 4)));
        ushort characteristics = BinaryPrimitives.ReadUInt16LittleEndian(pe.AsSpan(header + 22));
        Assert.Equal(0, characteristics & 1);                                                         // IMAGE_FILE_RELOCS_STRIPPED clear
    }

    // UEFI 2.10 5.2.3 and 5.3: protective MBR, primary and backup GPT headers with
    // valid CRC32s, one EFI System Partition.
    [Fact]
    public void Gen2DiskIsGptWithOneEsp()
    {
        var disk = File.ReadAllBytes(UefiImage.Disk);
        Assert.True(disk.Length % (1 << 20) == 0, $"disk size {disk.Length} is not whole MiB");
        Assert.Equal(0x55, disk[510]);
        Assert.Equal(0xAA, disk[511]);
        Assert.Equal(0xEE, disk[446 + 4]);                                      // protective partition type
        long lastLba = disk.Length / 512 - 1;
        foreach (long lba in new[] { 1L, lastLba })
        {
            var h = disk.AsSpan((int)(lba * 512), 512);
            Assert.Equal("EFI PART", Encoding.ASCII.GetString(h[..8]));
            int size = BinaryPrimitives.ReadInt32LittleEndian(h[12..]);
            var copy = h[..size].ToArray();
            Array.Clear(copy, 16, 4);
            Assert.Equal(BinaryPrimitives.ReadUInt32LittleEndian(h[16..]), Crc32(copy));
            Assert.Equal(lba, BinaryPrimitives.ReadInt64LittleEndian(h[24..]));          // MyLBA
            long entries = BinaryPrimitives.ReadInt64LittleEndian(h[72..]);
            int count = BinaryPrimitives.ReadInt32LittleEndian(h[80..]), entrySize = BinaryPrimitives.ReadInt32LittleEndian(h[84..]);
            var array = disk.AsSpan((int)(entries * 512), count * entrySize);
            Assert.Equal(BinaryPrimitives.ReadUInt32LittleEndian(h[88..]), Crc32(array));
            Assert.Equal(new Guid("C12A7328-F81F-11D2-BA4B-00A0C93EC93B"), new Guid(array[..16]));
            Assert.Equal(UefiImage.EspOffset / 512, BinaryPrimitives.ReadInt64LittleEndian(array[32..]));
            for (int i = 1; i < count; i++) Assert.Equal(Guid.Empty, new Guid(array.Slice(i * entrySize, 16)));
        }
        Assert.Equal("FAT32   ", Encoding.ASCII.GetString(disk, (int)UefiImage.EspOffset + 82, 8));
    }

    // The CRC-32 of GPT (UEFI 2.10 5.3.2: the IEEE 802.3 polynomial, reflected).
    private static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (uint)-(int)(crc & 1));
        }
        return ~crc;
    }

    [Fact]
    public void EspHoldsBootX64AndCommandLine()
    {
        string part = $"{UefiImage.Disk}@@{UefiImage.EspOffset}";
        var dir = Repo.Run("mdir", $"-b -i {part} ::/EFI/BOOT", TimeSpan.FromSeconds(30));
        Assert.True(dir.ExitCode == 0, dir.Output);
        Assert.Contains("BOOTX64.EFI", dir.Stdout);
        Assert.Contains("CMDLINE.TXT", dir.Stdout);
        string copy = Path.GetTempFileName();
        try
        {
            var r = Repo.Run("mcopy", $"-o -n -i {part} ::/EFI/BOOT/BOOTX64.EFI {copy}", TimeSpan.FromSeconds(30));
            Assert.True(r.ExitCode == 0, r.Output);
            Assert.Equal(File.ReadAllBytes(UefiImage.Efi), File.ReadAllBytes(copy));
        }
        finally { File.Delete(copy); }
    }

    [Fact]
    public void VhdxIsReadableWithWholeMiBSize()
    {
        var r = Repo.Run("qemu-img", $"info --output=json {UefiImage.Vhdx}", TimeSpan.FromSeconds(30));
        Assert.True(r.ExitCode == 0, r.Output);
        using var json = JsonDocument.Parse(r.Stdout);
        Assert.Equal("vhdx", json.RootElement.GetProperty("format").GetString());
        long size = json.RootElement.GetProperty("virtual-size").GetInt64();
        Assert.True(size > 0 && size % (1 << 20) == 0, $"virtual size {size} is not whole MiB");
        Assert.Equal(new FileInfo(UefiImage.Disk).Length, size);
    }
}
