using System;
using System.Runtime;
using System.Runtime.CompilerServices;
using Kernel.Arch;
using Kernel.Hv;
using Kernel.Runtime;

namespace Kernel.TestMode
{
    // Bench mode (command line `bench`, `bench=N` for N samples, at least 10,000):
    // RDTSC medians and 99th percentiles, printed as tagged lines that
    // tools/bench.sh turns into build/bench.json and bench/RESULTS.md:
    //   bench: <name> median=<cycles> p99=<cycles> n=<samples> [status=<hv status>]
    //   bench-timeline: entry=<tsc> long_mode=<tsc> runtime_started=<tsc> hv_ready=<tsc> all_vps_ready=<tsc> test_ready=<tsc>
    public static unsafe class BenchMode
    {
        private struct FloorArgs
        {
            public ulong Control, Rdx, R8, Count;
            public ulong* Samples;
        }

        [RuntimeImport("bench_hypercall_floor")] [MethodImpl(MethodImplOptions.InternalCall)]
        private static extern void HypercallFloor(FloorArgs* args);

        private const int BenchSint = 12;
        private const uint EventConnection = 41, MessageConnection = 42;

        public static void Run()
        {
            int n = 10000;
            if (BootInfo.TryGetOption("bench"u8, out byte* value, out int length) && length > 0) n = (int)Format.ParseNumber(value, length);
            if (n < 10000) n = 10000;
            ulong* samples = (ulong*)PageAllocator.AllocateContiguous(((ulong)n * 8 + 4095) / 4096);
            Console.WriteLine("bench mode"u8);
            PrintTimeline();
            if (!HyperV.HypercallPageEnabled)
            {
                Console.Print("bench: hypercalls skipped: %s\n"u8, HyperV.Present ? "no hypercall page"u8 : HyperV.AbsentReason);
            }
            else
            {
                SignalEventDirect(samples, n);
                if (TestDevice.Present && Synic.Available)
                {
                    SignalEventFast(samples, n);
                    PostMessageSlow(samples, n);
                    SintLatency(samples, n, Vp.Get(0), "sint_latency.same_vp"u8);
                    if (Vp.Count > 1) SintLatency(samples, n, Vp.Get(1), "sint_latency.cross_vp"u8);
                    else Console.WriteLine("bench: sint_latency.cross_vp skipped: one VP"u8);
                    Dispatch(samples, n);
                }
                else Console.WriteLine("bench: connection hypercalls skipped: no hyperv-testdev"u8);
                if (Synic.Available) RoundTrips(samples, n);
                ChannelRoundTrip(samples);
            }
        }

        // ---- a VMBus channel's packet round trip -------------------------------------------

        private const int ChannelRounds = 200;
        private static ulong s_packetTsc, s_packets;
        private static byte* s_packetBuffer;

        private static void OnBenchChannelInterrupt(Drivers.VmBus.VmbusChannel* channel)
            => Drivers.VmBus.VmbusPackets.Drain(channel, s_packetBuffer, 4096, &OnBenchPacket);

        private static void OnBenchPacket(Drivers.VmBus.VmbusChannel* channel, byte* data, uint length)
        {
            s_packetTsc = Cpu.ReadTsc();
            s_packets++;
        }

        // A request and the host's answer on an opened channel: DM_VERSION_REQUEST
        // to QEMU's hv-balloon (qemu-run.sh --hv-balloon), from just before the
        // packet goes into the ring to the C# packet callback that takes the
        // DM_VERSION_RESPONSE. hv-balloon answers a version request only on a
        // fresh channel, so each round opens the channel (GPADL, OPENCHANNEL)
        // and closes it again (CLOSECHANNEL resets the device); only the
        // request and its answer are timed.
        private static void ChannelRoundTrip(ulong* samples)
        {
            if (!Drivers.DynamicMemory.DynamicMemoryDevice.Bound)
            {
                Console.WriteLine("bench: vmbus.packet_round_trip skipped: no Dynamic Memory channel (qemu-run.sh --hv-balloon)"u8);
                return;
            }
            Drivers.VmBus.VmbusOffer offer = *Drivers.DynamicMemory.DynamicMemoryDevice.Offer;
            Drivers.DynamicMemory.DynamicMemoryDevice.Close();
            s_packetBuffer = (byte*)PageAllocator.Allocate(zero: true);
            int done = 0;
            for (; done < ChannelRounds; done++)
            {
                var channel = Drivers.VmBus.VmbusChannels.Open(&offer, Drivers.DynamicMemory.DynamicMemoryDevice.RingPages,
                    &OnBenchChannelInterrupt, out Drivers.VmBus.VmbusResult opened);
                if (channel == null) { Console.Print("bench: vmbus.packet_round_trip: OPENCHANNEL failed: %s\n"u8, Drivers.VmBus.VmbusConnection.ResultName(opened)); return; }
                Drivers.DynamicMemory.DmVersionRequest request = default;
                request.Header = Drivers.DynamicMemory.DmHeader.Of(Drivers.DynamicMemory.DmMessageType.VersionRequest, Drivers.DynamicMemory.DmVersionRequest.Size, (uint)done + 1);
                request.Version = Drivers.DynamicMemory.DmVersion.Win10;
                ulong seen = s_packets;
                ulong t0 = Cpu.ReadTscOrdered();
                Drivers.VmBus.VmbusPackets.Send(channel, (byte*)&request, Drivers.DynamicMemory.DmVersionRequest.Size, (ulong)done + 1, false);
                bool answered;
                fixed (ulong* packets = &s_packets) answered = Clock.WaitAtLeast(packets, seen + 1, 1000);
                samples[done] = s_packetTsc - t0;
                Drivers.VmBus.VmbusChannels.Close(channel);
                if (!answered) break;
            }
            PageAllocator.Free(s_packetBuffer);
            if (done < ChannelRounds) { Console.WriteLine("bench: vmbus.packet_round_trip incomplete: no answer within 1 s"u8); return; }
            Report("vmbus.packet_round_trip"u8, samples, ChannelRounds, 0, false);
        }

        public static void PrintTimeline()
        {
            BootSymbols* s = BootSymbols.Get();
            Console.Print("bench-timeline: entry=%u long_mode=%u runtime_started=%u hv_ready=%u"u8,
                *(ulong*)s->TscAtEntry, *(ulong*)s->TscAtLongMode, BootTimeline.RuntimeStarted, BootTimeline.HvReady);
            Console.Print(" all_vps_ready=%u test_ready=%u tsc_hz=%u\n"u8, BootTimeline.AllVpsReady, BootTimeline.Ready,
                HyperV.Present && HyperV.Has(HvPartitionPrivilege.AccessFrequencyRegs) ? Cpu.ReadMsr(HvMsr.TscFrequency) : 0);
        }

        private static void Floor(ReadOnlySpan<byte> name, HvHypercallControl control, ulong rdx, ulong r8, ulong* samples, int n)
        {
            FloorArgs args;
            args.Control = control.Value;
            args.Rdx = rdx;
            args.R8 = r8;
            args.Count = (ulong)n;
            args.Samples = samples;
            HypercallFloor(&args);
            Report(name, samples, n, 0, false);
        }

        private static void SignalEventDirect(ulong* samples, int n)
        {
            // The C# API first (it also fills the input page the floor then reuses).
            HvCallResult last = default;
            for (int i = 0; i < n; i++)
            {
                ulong t0 = Cpu.ReadTscOrdered();
                last = Hypercall.SignalEventDirect(HvConstants.HV_PARTITION_ID_SELF, Vp.Current->Index, 0, BenchSint, 1);
                samples[i] = Cpu.ReadTscOrdered() - t0;
            }
            Report("signal_event_direct.csharp"u8, samples, n, (ulong)last.Status, true);
            Floor("signal_event_direct.floor"u8, HvHypercallControl.For(HvCallCode.HvCallSignalEventDirect),
                (ulong)Hypercall.InputPage, (ulong)Hypercall.OutputPage, samples, n);
        }

        private static void SignalEventFast(ulong* samples, int n)
        {
            TestDevice.CreateEventConnection(EventConnection, Vp.Current->Index, BenchSint);
            HvCallResult last = default;
            for (int i = 0; i < n; i++)
            {
                ulong t0 = Cpu.ReadTscOrdered();
                last = Hypercall.SignalEvent(EventConnection, 0);
                samples[i] = Cpu.ReadTscOrdered() - t0;
            }
            Report("signal_event_fast.csharp"u8, samples, n, (ulong)last.Status, true);
            HvHypercallControl control = HvHypercallControl.For(HvCallCode.HvCallSignalEvent);
            control.Fast = true;
            Floor("signal_event_fast.floor"u8, control, EventConnection, 0, samples, n);
            Clock.Delay(100);
            TestDevice.DestroyEventConnection(EventConnection);
        }

        private static void PostMessageSlow(ulong* samples, int n)
        {
            TestDevice.CreateMessageConnection(MessageConnection, Vp.Current->Index, BenchSint);
            byte* payload = stackalloc byte[16];
            for (int i = 0; i < 16; i++) payload[i] = (byte)i;
            HvCallResult last = default;
            for (int i = 0; i < n; i++)
            {
                ulong t0 = Cpu.ReadTscOrdered();
                last = Hypercall.PostMessage(MessageConnection, 1, payload, 16);
                samples[i] = Cpu.ReadTscOrdered() - t0;
            }
            Report("post_message_slow.csharp"u8, samples, n, (ulong)last.Status, true);
            Floor("post_message_slow.floor"u8, HvHypercallControl.For(HvCallCode.HvCallPostMessage), (ulong)Hypercall.InputPage, 0, samples, n);
            Clock.Delay(100);
            TestDevice.DestroyMessageConnection(MessageConnection);
        }

        // ---- SINT latency and dispatch ------------------------------------------------------

        private const uint LatencyConnection = 43;
        private const ulong CallbackWaitMs = 1000;
        private static ulong s_callbackTsc, s_callbacks;

        private static void OnBenchFlag(int sint, int flag)
        {
            s_callbackTsc = Cpu.ReadTsc();
            s_callbacks++;
        }

        private static bool WaitCallbacks(ulong count)
        {
            fixed (ulong* c = &s_callbacks) return Clock.WaitAtLeast(c, count, CallbackWaitMs);
        }

        // From just before the signalling hypercall to the handler's first instruction
        // (boot/bench.asm bench_sint_entry, in front of the normal stub), through an
        // event connection routed to `target`.
        private static void SintLatency(ulong* samples, int n, Vp* target, ReadOnlySpan<byte> name)
        {
            BenchSymbols* s = BenchSymbols.Get();
            byte vector = (byte)(Synic.VectorBase + BenchSint);
            ulong normal = Interrupts.GateAddress(vector);
            *s->Continue = normal;
            Interrupts.SetGateAddress(vector, s->SintEntry);
            Synic.EventHandlers[BenchSint] = &OnBenchFlag;
            TestDevice.CreateEventConnection(LatencyConnection, target->Index, BenchSint);
            s_callbacks = 0;
            int done = 0;
            for (; done < n; done++)
            {
                ulong t0 = Cpu.ReadTscOrdered();
                Hypercall.SignalEvent(LatencyConnection, 0);
                if (!WaitCallbacks((ulong)done + 1)) break;
                samples[done] = *s->EntryTsc - t0;
            }
            TestDevice.DestroyEventConnection(LatencyConnection);
            Synic.EventHandlers[BenchSint] = null;
            Interrupts.SetGateAddress(vector, normal);
            if (done < n) { Console.Print("bench: %s incomplete: an event did not arrive within 1 s\n"u8, name); return; }
            Report(name, samples, n, 0, false);
        }

        // ---- event round trips: the call to the flag's callback on the target -----------

        private const ushort RoundTripFlag = 7;
        private const uint RoundTripConnection = 44;

        // HvCallSignalEventDirect, which KVM (the project's) handles in the kernel,
        // against HvCallSignalEvent through a hyperv-testdev connection, which KVM
        // hands to QEMU's user space (an eventfd, then QEMU sets the flag): from
        // just before the call to the C# per-flag callback on the target VP.
        private static void RoundTrips(ulong* samples, int n)
        {
            for (int t = 0; t < 2; t++)
            {
                if (t == 1 && Vp.Count < 2) { Console.WriteLine("bench: round_trip.*.cross_vp skipped: one VP"u8); break; }
                Vp* target = Vp.Get(t);
                if (DirectCalls.Implemented) RoundTrip(samples, n, target, true, t == 0 ? "round_trip.direct.same_vp"u8 : "round_trip.direct.cross_vp"u8);
                else Console.Print("bench: round_trip.direct skipped: %s\n"u8, DirectCalls.AbsentReason);
                if (TestDevice.Present) RoundTrip(samples, n, target, false, t == 0 ? "round_trip.connection.same_vp"u8 : "round_trip.connection.cross_vp"u8);
                else Console.WriteLine("bench: round_trip.connection skipped: no hyperv-testdev"u8);
            }
        }

        private static void RoundTrip(ulong* samples, int n, Vp* target, bool direct, ReadOnlySpan<byte> name)
        {
            if (!direct) TestDevice.CreateEventConnection(RoundTripConnection, target->Index, BenchSint);
            Synic.EventHandlers[BenchSint] = &OnBenchFlag;
            s_callbacks = 0;
            int done = 0;
            for (; done < n; done++)
            {
                ulong t0 = Cpu.ReadTscOrdered();
                if (direct) Hypercall.SignalEventDirect(HvConstants.HV_PARTITION_ID_SELF, target->Index, 0, BenchSint, RoundTripFlag);
                else Hypercall.SignalEvent(RoundTripConnection, 0);
                if (!WaitCallbacks((ulong)done + 1)) break;
                samples[done] = s_callbackTsc - t0;
            }
            Synic.EventHandlers[BenchSint] = null;
            if (!direct) TestDevice.DestroyEventConnection(RoundTripConnection);
            if (done < n) { Console.Print("bench: %s incomplete: an event did not arrive within 1 s\n"u8, name); return; }
            Report(name, samples, n, 0, false);
        }

        // From the handler's first instruction to the per-flag callback, and to
        // the handler's return: the C# path (stub, register save, Synic's
        // receive path) against the bare floor in boot/bench.asm,
        // bench_sint_bare, which does the same job in assembly: it saves the
        // same registers, scans the SINT's SIEF area, takes the word with xchg,
        // finds the flag, calls the same callback and returns. Both are entered
        // through bench_sint_entry_exit, which reads the TSC at entry and right
        // after the iretq, so both are measured alike, in the same boot, and
        // interleaved, one sample of each in turn (which goes first alternates):
        // under the nested emulator the host's load moves every figure, and
        // this way it moves both sides alike.
        private static void Dispatch(ulong* samples, int n)
        {
            BenchSymbols* s = BenchSymbols.Get();
            byte vector = (byte)(Synic.VectorBase + BenchSint);
            ulong normal = Interrupts.GateAddress(vector);
            ulong pages = ((ulong)n * 8 + 4095) / 4096;
            ulong* totals = (ulong*)PageAllocator.AllocateContiguous(pages);
            ulong* bareSamples = (ulong*)PageAllocator.AllocateContiguous(pages);
            ulong* bareTotals = (ulong*)PageAllocator.AllocateContiguous(pages);
            TestDevice.CreateEventConnection(LatencyConnection, Vp.Current->Index, BenchSint);
            bool autoEoi = (Vp.Current->AutoEoiMask & (1u << BenchSint)) != 0;
            Synic.Configure(BenchSint, masked: false, autoEoi: true);    // the bare handler sends no EOI

            SintFloor* floor = s->Floor;
            floor->Area = Synic.SiefArea(Vp.Current, BenchSint);
            floor->Slot = &Vp.Current->Sim[BenchSint];
            floor->Copy = (HvMessage*)PageAllocator.Allocate(zero: true);
            floor->OnFlag = &OnBenchFlag;
            floor->OnMessage = &OnBenchMessage;
            Synic.EventHandlers[BenchSint] = &OnBenchFlag;
            Interrupts.SetGateAddress(vector, s->SintEntryExit);
            s_callbacks = 0;
            int done = 0;
            for (; done < n; done++)
            {
                bool csharpFirst = (done & 1) == 0;
                if (!DispatchSample(csharpFirst ? normal : s->SintBare, (ulong)(2 * done + 1), csharpFirst ? samples : bareSamples, csharpFirst ? totals : bareTotals, done)) break;
                if (!DispatchSample(csharpFirst ? s->SintBare : normal, (ulong)(2 * done + 2), csharpFirst ? bareSamples : samples, csharpFirst ? bareTotals : totals, done)) break;
            }
            Interrupts.SetGateAddress(vector, normal);
            *s->Continue = normal;
            Synic.EventHandlers[BenchSint] = null;
            PageAllocator.Free(floor->Copy);
            Synic.Configure(BenchSint, masked: false, autoEoi: autoEoi);
            TestDevice.DestroyEventConnection(LatencyConnection);
            if (done < n) { Console.WriteLine("bench: sint_dispatch incomplete: an event did not arrive within 1 s"u8); return; }
            Report("sint_dispatch.csharp"u8, samples, n, 0, false);
            Report("sint_dispatch_return.csharp"u8, totals, n, 0, false);
            Report("sint_dispatch.bare"u8, bareSamples, n, 0, false);
            Report("sint_dispatch_return.bare"u8, bareTotals, n, 0, false);
        }

        // One signal handled by the stub `handler` (the kernel's, or bench_sint_bare):
        // entry to callback into samples[i], entry to just after the iretq into totals[i].
        private static bool DispatchSample(ulong handler, ulong callbacks, ulong* samples, ulong* totals, int i)
        {
            BenchSymbols* s = BenchSymbols.Get();
            *s->Continue = handler;
            Hypercall.SignalEvent(LatencyConnection, 0);
            if (!WaitCallbacks(callbacks)) return false;
            // The interrupt returned through bench_sint_exit before this code ran again.
            samples[i] = s_callbackTsc - *s->EntryTsc;
            totals[i] = *s->ExitTsc - *s->EntryTsc;
            return true;
        }

        private static void OnBenchMessage(int sint, HvMessage* message) { }

        private static void Report(ReadOnlySpan<byte> name, ulong* samples, int n, ulong status, bool withStatus)
        {
            Statistics.Sort(samples, n);
            Console.Print("bench: %s median=%u p99=%u n=%u"u8, name, samples[n / 2], samples[(int)((ulong)n * 99 / 100)], n);
            if (withStatus) Console.Print(" status=0x%x"u8, status);
            Console.WriteLine();
        }
    }

    public static unsafe class Statistics
    {
        // Heap sort: in place, O(n log n), no allocation.
        public static void Sort(ulong* a, int n)
        {
            for (int i = n / 2 - 1; i >= 0; i--) SiftDown(a, i, n);
            for (int end = n - 1; end > 0; end--)
            {
                ulong t = a[0]; a[0] = a[end]; a[end] = t;
                SiftDown(a, 0, end);
            }
        }

        private static void SiftDown(ulong* a, int root, int n)
        {
            while (true)
            {
                int child = 2 * root + 1;
                if (child >= n) return;
                if (child + 1 < n && a[child + 1] > a[child]) child++;
                if (a[root] >= a[child]) return;
                ulong t = a[root]; a[root] = a[child]; a[child] = t;
                root = child;
            }
        }
    }
}
