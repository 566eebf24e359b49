<#
.SYNOPSIS
  Boots build/gen2.vhdx (make image) as a Hyper-V Generation 2 VM and reports
  the kernel's test result, read from COM1 through a named pipe.

.DESCRIPTION
  Needs a Windows host with Hyper-V and an elevated shell. CI (make test) checks
  it on Linux with PowerShell 7 (tests/Kernel.Tests/HyperVScriptTests.cs):
  PowerShell's parser accepts it, and it runs against stand-ins, functions named
  like the Hyper-V cmdlets that record their parameters and a COM1 pipe server
  that replays this image's real serial output (OVMF under QEMU). That checks the
  VM it asks for (Generation 2 with a copy of -Vhdx, Secure Boot off, COM1 on the
  pipe it reads, -ProcessorCount), the clean-up, and the exit status, which
  follows qemu-run.sh's: 0 passed, 1 a guest test failed, 2 the guest powered
  off without a result line (it crashed), 3 no result line by -TimeoutSeconds,
  70 COM1's pipe could not be opened within -ConnectTimeoutSeconds. Whatever
  happens after New-VM, the VM is turned off and removed and the disk copy
  deleted. Only a real Hyper-V host shows that its
  cmdlets take these calls as the stand-ins do, that the VM boots the image and
  that Hyper-V's pipe carries COM1 so; the script has not been run on one yet.
  The image's EFI/BOOT/CMDLINE.TXT is "test" by default (Makefile GEN2_CMDLINE),
  so the kernel runs its guest tests, prints "N passed, N failed, N skipped" on
  COM1 and powers the VM off through UEFI ResetSystem (kernel/arch/EfiBoot.cs).
  Secure Boot is off: BOOTX64.EFI is not signed.

.EXAMPLE
  .\New-Gen2TestVm.ps1 -Vhdx .\build\gen2.vhdx -ProcessorCount 2
#>
param(
    [Parameter(Mandatory)] [string] $Vhdx,
    [string] $Name = "csharp-hv-guest-test",
    [int] $ProcessorCount = 2,
    [int] $TimeoutSeconds = 300,
    [int] $ConnectTimeoutSeconds = 30
)
$ErrorActionPreference = "Stop"
$pipe = "\\.\pipe\$Name-com1"

# A private copy of the disk: the VM writes to it, and the original stays reusable.
# GetTempPath() is %TMP% (else %TEMP%) on Windows and $TMPDIR (else /tmp) elsewhere,
# where $env:TEMP is unset (the stand-in tests run there).
$disk = Join-Path ([System.IO.Path]::GetTempPath()) "$Name.vhdx"
Copy-Item -Force $Vhdx $disk
if (Get-VM -Name $Name -ErrorAction SilentlyContinue) { Stop-VM -Name $Name -TurnOff -Force; Remove-VM -Name $Name -Force }

# The outcome when no result line comes; the reading loop refines it.
$status = 3
$why = "no result line from the guest within $TimeoutSeconds s"
$result = $null
$client = $null
$reader = $null
try {
    New-VM -Name $Name -Generation 2 -MemoryStartupBytes 512MB -VHDPath $disk | Out-Null
    Set-VMProcessor -VMName $Name -Count $ProcessorCount
    Set-VMFirmware -VMName $Name -EnableSecureBoot Off
    Set-VMComPort -VMName $Name -Number 1 -Path $pipe
    Set-VM -Name $Name -AutomaticCheckpointsEnabled $false

    Start-VM -Name $Name
    # Hyper-V creates the pipe server; connect as its client and read COM1 line by line.
    # A blocking ReadLine() would let a guest that hangs silently, with the pipe open,
    # hold the script past -TimeoutSeconds forever: the deadline is only looked at
    # between lines. So each line is read with ReadLineAsync() and waited for only
    # as long as the deadline leaves; a read still pending then is abandoned, and
    # ends when the pipe is closed below (asynchronous I/O, so that closing the
    # handle cancels it on Windows).
    $client = New-Object System.IO.Pipes.NamedPipeClientStream(".", "$Name-com1", [System.IO.Pipes.PipeDirection]::In, [System.IO.Pipes.PipeOptions]::Asynchronous)
    $connected = $false
    try { $client.Connect($ConnectTimeoutSeconds * 1000); $connected = $true }
    catch {
        $status = 70
        $why = "COM1 of VM $Name ($pipe) could not be opened within $ConnectTimeoutSeconds s: $($_.Exception.Message)"
    }
    if ($connected) {
        $reader = New-Object System.IO.StreamReader($client)
        $deadline = (Get-Date).AddSeconds($TimeoutSeconds)
        while ($true) {
            $left = [Math]::Ceiling(($deadline - (Get-Date)).TotalMilliseconds)
            if ($left -le 0) { break }
            $read = $reader.ReadLineAsync()
            if (-not $read.Wait([int][Math]::Min($left, [int]::MaxValue))) { break }   # no complete line by the deadline
            $line = $read.Result
            if ($null -eq $line) {                  # the VM powered off and Hyper-V closed the pipe
                $status = 2
                $why = "the guest powered off without a result line (it crashed?)"
                break
            }
            Write-Host $line
            if ($line -match '^(\d+) passed, (\d+) failed, (\d+) skipped$') { $result = $Matches; break }
        }
    }
}
finally {
    # Also after an error or Ctrl+C: no VM and no disk copy may outlive the run.
    if ($null -ne $reader) { $reader.Dispose() } elseif ($null -ne $client) { $client.Dispose() }
    Stop-VM -Name $Name -TurnOff -Force -ErrorAction SilentlyContinue
    Remove-VM -Name $Name -Force -ErrorAction SilentlyContinue
    Remove-Item -Force $disk -ErrorAction SilentlyContinue
}

# -ErrorAction Continue: under "Stop" Write-Error would throw, and pwsh would exit 1.
if ($null -eq $result) { Write-Error $why -ErrorAction Continue; exit $status }
if ([int]$result[2] -ne 0) { Write-Host "guest tests failed: $($result[0])"; exit 1 }
Write-Host "guest tests passed: $($result[0])"
exit 0
