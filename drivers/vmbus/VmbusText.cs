using System;
using Kernel.Runtime;
using Guid = Kernel.Runtime.Guid;     // not the host's System.Guid, where the host tests compile this file
// What the VMBus client prints: message type names, device class names, and
// the line that describes an offer (the boot log's "vmbus:   relid ..." lines).
// Formatting only, into the caller's buffer; the caller writes it out.
//
// Plain C#, no kernel dependencies: tests/Kernel.Tests compiles this file.
#nullable disable

namespace Drivers.VmBus
{
    public static unsafe class VmbusText
    {
        // The CHANNELMSG_ names of Linux include/linux/hyperv.h without the prefix,
        // in type order from 1 (OFFERCHANNEL) to 17 (UNLOAD_RESPONSE). Each entry
        // of these tables ends in a zero byte, so each name found in them is, as
        // a literal is, zero-terminated text the console can print as it stands.
        private static ReadOnlySpan<byte> MessageTypeNames =>
            "OFFERCHANNEL\0RESCIND_CHANNELOFFER\0REQUESTOFFERS\0ALLOFFERS_DELIVERED\0OPENCHANNEL\0"u8 +
            "OPENCHANNEL_RESULT\0CLOSECHANNEL\0GPADL_HEADER\0GPADL_BODY\0GPADL_CREATED\0GPADL_TEARDOWN\0"u8 +
            "GPADL_TORNDOWN\0RELID_RELEASED\0INITIATE_CONTACT\0VERSION_RESPONSE\0UNLOAD\0UNLOAD_RESPONSE\0"u8;

        // The well-known device classes (the class GUIDs of Linux include/linux/hyperv.h),
        // one "class name" an entry.
        private static ReadOnlySpan<byte> ClassNames =>
            "f8615163-df3e-46c5-913f-f2d2f965ed0e network\0"u8 +
            "32412632-86cb-44a2-9b5c-50d1417354f5 ide\0"u8 +
            "ba6163d9-04a1-4d29-b605-72e2ffb1dc7f scsi\0"u8 +
            "0e0b6031-5213-4934-818b-38d90ced39db shutdown\0"u8 +
            "9527e630-d0ae-497b-adce-e80ab0175caf timesync\0"u8 +
            "57164f39-9115-4e78-ab55-382f3bd5422d heartbeat\0"u8 +
            "a9a0f4e7-5a45-4d96-b827-8a841e8c03e6 kvp\0"u8 +
            "35fa2e29-ea23-4236-96ae-3a6ebacba440 vss\0"u8 +
            "525074dc-8985-46e2-8057-a307dc18a502 dynamic-memory\0"u8 +
            "cfa8b69e-5b4a-4cc0-b98b-8ba1a1f3f95a mouse\0"u8 +
            "f912ad6d-2b17-48ea-bd65-f927a61c7684 keyboard\0"u8 +
            "da0a7802-e377-4aac-8e77-0558eb1073f8 synthetic-video\0"u8 +
            "2f9bcc4a-0069-4af3-b76b-6fd0be528cda fibre-channel\0"u8 +
            "34d14be3-dee4-41c8-9ae7-6b174977c192 file-copy\0"u8 +
            "8c2eaf3d-32a7-4b09-ab99-bd1f1c86b501 network-direct\0"u8 +
            "44c4f61d-4444-4400-9d52-802e27ede19f pci-passthrough\0"u8 +
            "276aacf4-ac15-426c-98dd-7521ad3f01fe remote-desktop\0"u8;

        public static ReadOnlySpan<byte> MessageTypeName(uint type)
        {
            ReadOnlySpan<byte> name = type == 0 || type > VmbusMessageType.UnloadResponse ? default : Entry(MessageTypeNames, (int)type - 1);
            return name.IsEmpty ? "unknown"u8 : name;
        }

        // A short name for an offer's interface type; empty when it is not a well-known class.
        public static ReadOnlySpan<byte> ClassName(Guid* type)
        {
            byte* text = stackalloc byte[Guid.FormattedLength];
            type->Format(text);
            for (int i = 0; ; i++)
            {
                ReadOnlySpan<byte> entry = Entry(ClassNames, i);
                if (entry.IsEmpty) return default;
                int at = 0;
                while (at < Guid.FormattedLength && entry[at] == text[at]) at++;
                if (at == Guid.FormattedLength) return entry.Slice(Guid.FormattedLength + 1);
            }
        }

        // Entry `index` of a table of zero-terminated entries, without its zero; empty past the last.
        private static ReadOnlySpan<byte> Entry(ReadOnlySpan<byte> table, int index)
        {
            int start = 0;
            for (int end = 0; end < table.Length; end++)
            {
                if (table[end] != 0) continue;
                if (index-- == 0) return table.Slice(start, end - start);
                start = end + 1;
            }
            return default;
        }

        // Room for the longest offer line: every number at its widest, the longest class name.
        public const int MaxOfferLine = 224;

        // "vmbus:   relid 1 class 525074dc-... (dynamic-memory) instance c26c1498-...
        // connection 17 monitor none mmio 0 MiB subchannel 0", with " (rescinded)"
        // after a rescind; no line feed. Returns the bytes written (at most MaxOfferLine).
        public static int OfferLine(VmbusOffer* offer, byte* line)
        {
            byte* at = Put(line, "vmbus:   relid "u8);
            at += Format.Decimal((ulong)offer->ChildRelid, at);
            at = Put(at, " class "u8);
            at += offer->InterfaceType.Format(at);
            ReadOnlySpan<byte> name = ClassName(&offer->InterfaceType);
            at = Put(at, " ("u8);
            at = Put(at, name.IsEmpty ? "unknown class"u8 : name);
            at = Put(at, ") instance "u8);
            at += offer->InterfaceInstance.Format(at);
            at = Put(at, " connection "u8);
            at += Format.Decimal((ulong)offer->ConnectionId, at);
            at = Put(at, " monitor "u8);
            if (offer->MonitorAllocated) at += Format.Decimal((ulong)offer->MonitorId, at);
            else at = Put(at, "none"u8);
            at = Put(at, " mmio "u8);
            at += Format.Decimal((ulong)offer->MmioMegabytes, at);
            at = Put(at, " MiB subchannel "u8);
            at += Format.Decimal((ulong)offer->SubChannelIndex, at);
            if (offer->Rescinded) at = Put(at, " (rescinded)"u8);
            return (int)(at - line);
        }

        private static byte* Put(byte* at, ReadOnlySpan<byte> text)
        {
            for (int i = 0; i < text.Length; i++) at[i] = text[i];
            return at + text.Length;
        }
    }
}
