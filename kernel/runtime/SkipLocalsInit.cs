// No zeroed stack frames: without this attribute C# marks every method
// "localsinit", and RyuJIT zeroes its frame on entry and every stackalloc
// buffer, code that the kernel's methods then carry for nothing. C# still
// requires each local to be assigned before it is read, so what changes is
// only memory reached through a pointer before it was written: a stackalloc
// buffer, and a local whose address is taken (`&x`, which C# allows while x is
// unassigned), the bytes of which may then be read, or sent to the
// hypervisor or the host.
//
// Audited when the attribute went in (kernel/, drivers/, tests/guest/, both images):
// - every stackalloc is written before it is read: text is formatted into it
//   and only the formatted length read (Format, Console, VmbusText, the tests'
//   Expect and Detail); payloads are filled before they are posted or compared
//   (the two in DirectTests that were posted as the zeroes they started with now
//   are); arrays of counters are filled before the loop that reads them;
//   BadArgumentsRefused's payload is never read, every call there being refused.
// - every address-taken local is written in full before it is read or sent:
//   descriptor-table pointers (both fields, or sgdt), CpuidResult (the stub
//   stores all four registers), ring descriptors (all fields, or copied from the
//   ring when a read returns Done), the DM responses (every field), the GPADL
//   messages (their builders zero all 240 bytes first); every other message or
//   hypercall input on the stack starts from `= default`, and hypercall inputs
//   are written in the VP's input page, reserved fields too (Hypercall.cs).
//   States handed to a callee (a wait's, a send's, a DM event) have every field
//   written before it is read; their padding is neither read nor sent.
//   Console.Print stores all five arguments before it indexes them, and
//   reads back only the digits Format wrote into its digit buffer.
// - the runtime has no SkipInit-like helper; Unsafe.AsPointer is taken of statics only.
//
// The rule for new code: a stackalloc or an address-taken struct local is
// written in full before it is read or sent. A message or hypercall input on
// the stack starts from `= default` (TLFS 3.7: reserved fields are zero);
// tests/Kernel.Tests/MessageLocalsTests.cs checks that for the TLFS, VMBus and
// Dynamic Memory layouts.
[module: System.Runtime.CompilerServices.SkipLocalsInit]
