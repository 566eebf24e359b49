using System;
using System.Runtime;
using System.Runtime.CompilerServices;
using Kernel.Arch;
using Kernel.Hv;
using Kernel.Runtime;

namespace Kernel.TestMode
{
    // Count mode (command line `count`): each hot path runs between two marker
    // calls (boot/bench.asm bench_count_begin, bench_count_end), so that
    // tools/count-instructions.py can count its executed instructions exactly
    // in QEMU's exec trace (qemu-run.sh --mode tcg --exec-trace FILE): the C#
    // path and its bare-assembly floor (boot/bench.asm) side by side.
    //
    // It runs under TCG, where there is no Hyper-V, so for its own duration,
    // and nowhere else, it stands in for the hypervisor:
    //  - the hypercall page gets `xor eax, eax; ret`: two instructions, as the
    //    hypervisor's `vmcall; ret` (TLFS 3.13), answering HV_STATUS_SUCCESS;
    //    and HyperV.HypercallPageEnabled is set, so the typed API issues calls;
    //  - the SynIC receive path gets zeroed SIM and SIEF pages
    //    (Synic.PrepareReceivePath) in which this mode sets the flag or writes
    //    the message the hypervisor would, and raises the SINT's vector with a
    //    software interrupt (bench_count_raise_sint), with IF set as a real
    //    delivery has it (kernel/arch/InterruptGuard.cs).
    // Each window is announced ("count-window: NAME"), then run after one call
    // that is not counted (so nothing done once, the first time, is counted),
    // Repeats times; the counter requires the repeats to agree.
    public static unsafe class CountMode
    {
        private const int Repeats = 3;
        private const byte BenchSint = 12;                 // boot/bench.asm BENCH_SINT
        private const ushort DirectFlag = 7, EventFlag = 43;
        private const uint EventConnection = 41, MessageConnection = 42, MessageType = 1;
        private const int PayloadBytes = 16;

        [RuntimeImport("bench_count_begin")] [MethodImpl(MethodImplOptions.InternalCall)]
        private static extern void Begin();
        [RuntimeImport("bench_count_end")] [MethodImpl(MethodImplOptions.InternalCall)]
        private static extern void End();
        [RuntimeImport("bench_count_raise_sint")] [MethodImpl(MethodImplOptions.InternalCall)]
        private static extern void RaiseSint();

        [RuntimeImport("bench_floor_signal_event_direct")] [MethodImpl(MethodImplOptions.InternalCall)]
        private static extern ulong FloorSignalEventDirect(ulong partition, uint vp, byte vtl, byte sint, ushort flag);
        [RuntimeImport("bench_floor_post_message_direct")] [MethodImpl(MethodImplOptions.InternalCall)]
        private static extern ulong FloorPostMessageDirect(ulong partition, uint vp, byte vtl, byte sint, uint messageType, byte* payload, uint payloadSize);
        [RuntimeImport("bench_floor_signal_event")] [MethodImpl(MethodImplOptions.InternalCall)]
        private static extern ulong FloorSignalEvent(uint connectionId, ushort flag);
        [RuntimeImport("bench_floor_post_message")] [MethodImpl(MethodImplOptions.InternalCall)]
        private static extern ulong FloorPostMessage(uint connectionId, uint messageType, byte* payload, uint payloadSize);

        // The typed API, called through pointers the compiler cannot see
        // through, so that each call is a real call with an entry to count from
        // (a caller elsewhere may get it inlined, which only makes it cheaper).
        private static delegate*<ulong, uint, byte, byte, ushort, HvCallResult> s_signalEventDirect;
        private static delegate*<ulong, uint, byte, byte, HvMessageType, byte*, uint, HvCallResult> s_postMessageDirect;
        private static delegate*<uint, ushort, HvCallResult> s_signalEvent;
        private static delegate*<uint, uint, byte*, uint, HvCallResult> s_postMessage;

        private static HvCallResult s_result;
        private static ulong s_floorStatus;
        private static byte* s_payload;
        private static ulong s_flags, s_messages;

        public static bool Run()
        {
            Console.WriteLine("count mode"u8);
            if (HyperV.Present)
            {
                Console.WriteLine("count: refused: there is a hypervisor here, and count mode would replace its hypercall page and SynIC pages (use --mode tcg)"u8);
                return false;
            }
            if (BootInfo.Loader == BootLoader.Uefi)
            {
                Console.WriteLine("count: refused: the floors in boot/bench.asm are System V code, so count mode runs on the ELF kernel only"u8);
                return false;
            }
            Vp* vp = Vp.Current;
            InstallStandInHypercallPage();
            HypercallPages* pages = BenchSymbols.Get()->Pages;
            pages->Input = vp->HypercallInput;
            pages->Output = vp->HypercallOutput;
            s_payload = (byte*)PageAllocator.Allocate(zero: true);
            for (int i = 0; i < PayloadBytes; i++) s_payload[i] = (byte)(0xA0 + i);
            s_signalEventDirect = &Hypercall.SignalEventDirect;
            s_postMessageDirect = &Hypercall.PostMessageDirect;
            s_signalEvent = &Hypercall.SignalEvent;
            s_postMessage = &Hypercall.PostMessage;

            // Interrupts stay off around the hypercall windows (nothing else may
            // run inside a window); a SINT window needs them on (bench_count_raise_sint).
            Cpu.DisableInterrupts();
            Window("signal_event_direct.csharp"u8, &CallCSharpSignalEventDirect);
            Window("signal_event_direct.floor"u8, &CallFloorSignalEventDirect);
            Window("post_message_direct.csharp"u8, &CallCSharpPostMessageDirect);
            Window("post_message_direct.floor"u8, &CallFloorPostMessageDirect);
            Window("signal_event_fast.csharp"u8, &CallCSharpSignalEvent);
            Window("signal_event_fast.floor"u8, &CallFloorSignalEvent);
            Window("post_message.csharp"u8, &CallCSharpPostMessage);
            Window("post_message.floor"u8, &CallFloorPostMessage);
            Cpu.EnableInterrupts();

            PrepareSint(vp);
            Window("sint_dispatch.event.csharp"u8, &RaiseWithFlag);
            Window("sint_dispatch.message.csharp"u8, &RaiseWithMessage);
            byte vector = (byte)(Synic.VectorBase + BenchSint);
            ulong normal = Interrupts.GateAddress(vector);
            SintFloor* floor = BenchSymbols.Get()->Floor;
            floor->Area = Synic.SiefArea(vp, BenchSint);
            floor->Slot = &vp->Sim[BenchSint];
            floor->Copy = (HvMessage*)PageAllocator.Allocate(zero: true);
            floor->OnFlag = &OnFlag;
            floor->OnMessage = &OnMessage;
            Interrupts.SetGateAddress(vector, BenchSymbols.Get()->SintBare);
            Window("sint_dispatch.event.floor"u8, &RaiseWithFlag);
            Window("sint_dispatch.message.floor"u8, &RaiseWithMessage);
            Interrupts.SetGateAddress(vector, normal);

            // Every window ran its callback once per call, and every call got HV_STATUS_SUCCESS from the stand-in page.
            ulong calls = 1 + Repeats;
            bool ok = s_flags == 2 * calls && s_messages == 2 * calls && s_result.Status == HvStatus.Success && s_floorStatus == 0;
            Console.Print("count: done: %u flag callbacks, %u message callbacks (expected %u each), last status 0x%x / floor 0x%x\n"u8,
                s_flags, s_messages, 2 * calls, (ulong)s_result.Status, s_floorStatus);
            return ok;
        }

        private static void Window(ReadOnlySpan<byte> name, delegate*<void> body)
        {
            Console.Print("count-window: %s\n"u8, name);
            body();
            for (int i = 0; i < Repeats; i++)
            {
                Begin();
                body();
                End();
            }
        }

        // A stand-in for the hypervisor's code, written where it would write it.
        private static void InstallStandInHypercallPage()
        {
            byte* page = (byte*)BootSymbols.Get()->HypercallPage;
            byte* standIn = stackalloc byte[] { 0x31, 0xC0, 0xC3 };  // xor eax, eax (HV_STATUS_SUCCESS, no reps completed); ret
            Paging.CopyToReadOnly(page, standIn, 3);
            HyperV.HypercallPageAddress = (ulong)page;
            HyperV.HypercallPageEnabled = true;
        }

        private static void CallCSharpSignalEventDirect()
            => s_result = s_signalEventDirect(HvConstants.HV_PARTITION_ID_SELF, Vp.Current->Index, 0, BenchSint, DirectFlag);
        private static void CallFloorSignalEventDirect()
            => s_floorStatus = FloorSignalEventDirect(HvConstants.HV_PARTITION_ID_SELF, Vp.Current->Index, 0, BenchSint, DirectFlag);
        private static void CallCSharpPostMessageDirect()
            => s_result = s_postMessageDirect(HvConstants.HV_PARTITION_ID_SELF, Vp.Current->Index, 0, BenchSint, (HvMessageType)MessageType, s_payload, PayloadBytes);
        private static void CallFloorPostMessageDirect()
            => s_floorStatus = FloorPostMessageDirect(HvConstants.HV_PARTITION_ID_SELF, Vp.Current->Index, 0, BenchSint, MessageType, s_payload, PayloadBytes);
        private static void CallCSharpSignalEvent() => s_result = s_signalEvent(EventConnection, 0);
        private static void CallFloorSignalEvent() => s_floorStatus = FloorSignalEvent(EventConnection, 0);
        private static void CallCSharpPostMessage() => s_result = s_postMessage(MessageConnection, MessageType, s_payload, PayloadBytes);
        private static void CallFloorPostMessage() => s_floorStatus = FloorPostMessage(MessageConnection, MessageType, s_payload, PayloadBytes);

        // ---- SINT dispatch ------------------------------------------------------------------

        private static void PrepareSint(Vp* vp)
        {
            Synic.PrepareReceivePath(vp);
            vp->AutoEoiMask |= 1u << BenchSint;     // as the nested bench configures it: no EOI to the APIC
            Synic.EventHandlers[BenchSint] = &OnFlag;
            Synic.MessageHandlers[BenchSint] = &OnMessage;
        }

        // What the hypervisor does for HvCallSignalEvent (TLFS 11.9.4): set the
        // flag in the SINT's SIEF area, then assert the SINT.
        private static void RaiseWithFlag()
        {
            Synic.SiefArea(Vp.Current, BenchSint)[EventFlag / 64] |= 1ul << (EventFlag % 64);
            RaiseSint();
        }

        // ... and for HvCallPostMessage (TLFS 11.10): a message in the SINT's free SIM slot.
        private static void RaiseWithMessage()
        {
            HvMessage* slot = &Vp.Current->Sim[BenchSint];
            slot->Header.PayloadSize = PayloadBytes;
            slot->Header.MessageFlags = 0;          // nothing pending behind it: no EOM (an MSR TCG has not)
            for (int i = 0; i < PayloadBytes; i++) slot->Payload[i] = s_payload[i];
            slot->Header.MessageType = MessageType; // last: the slot is now full
            RaiseSint();
        }

        private static void OnFlag(int sint, int flag) { if (sint == BenchSint && flag == EventFlag) s_flags++; }
        private static void OnMessage(int sint, HvMessage* message) { if (sint == BenchSint && message->Header.MessageType == MessageType) s_messages++; }
    }
}
