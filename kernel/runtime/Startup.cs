using System;
using Kernel.Runtime;

namespace Internal.Runtime.CompilerHelpers
{
    // What NativeAOT's own startup does before Main, reduced to what a kernel
    // needs. ilc emits, per compiled module, a ReadyToRun header whose address
    // sits in the `__modules` section; the header lists the module's tables.
    // Without this walk, object-reference statics would be null and static
    // constructors would silently never run.
    public static unsafe class StartupCodeHelpers
    {
        private const uint ReadyToRunSignature = 0x00525452;   // "RTR"
        private const int GCStaticRegion = 201;                // object-reference static bases
        private const int EagerCctor = 205;                    // static constructors to run at start-up
        private const int DehydratedData = 207;                // compressed MethodTables (we ask ilc for none)

        private const nint Uninitialized = 1;                  // GCStaticRegionConstants
        private const nint HasPreInitializedData = 2;
        private const nint FlagMask = 3;

        private struct ReadyToRunHeader
        {
            public uint Signature;
            public ushort MajorVersion, MinorVersion;
            public uint Flags;
            public ushort NumberOfSections;
            public byte EntrySize, EntryType;
        }

        private struct ModuleInfoRow
        {
            public int SectionId;
            public int Flags;
            public byte* Start, End;
        }

        public static int ModuleCount;
        public static int EagerConstructorsRun;
        public static int StaticBasesAllocated;

        // Called once by kmain before any C# that touches a static.
        public static void InitializeModules()
        {
            BootSymbols* symbols = BootSymbols.Get();
            for (void** module = (void**)symbols->ModulesStart; module < (void**)symbols->ModulesEnd; module++)
            {
                if (*module == null) continue;     // section padding
                InitializeModule((ReadyToRunHeader*)*module);
                ModuleCount++;
            }
        }

        private static void InitializeModule(ReadyToRunHeader* header)
        {
            if (header->Signature != ReadyToRunSignature)
                Panic.Fail("module header has a bad ReadyToRun signature"u8);
            ModuleInfoRow* rows = (ModuleInfoRow*)(header + 1);
            // Allocate every static base first: a constructor may read another type's statics.
            for (int i = 0; i < header->NumberOfSections; i++)
            {
                ModuleInfoRow* row = (ModuleInfoRow*)((byte*)rows + i * header->EntrySize);
                if (row->SectionId == GCStaticRegion) AllocateStaticBases(row->Start, row->End);
                if (row->SectionId == DehydratedData) Panic.Fail("module has dehydrated data; build with --nodehydrate"u8);
            }
            for (int i = 0; i < header->NumberOfSections; i++)
            {
                ModuleInfoRow* row = (ModuleInfoRow*)((byte*)rows + i * header->EntrySize);
                if (row->SectionId == EagerCctor) RunEagerConstructors(row->Start, row->End);
            }
        }

        // Each entry is a 32-bit relative pointer to a static base slot. An unset slot
        // holds a relative pointer to its MethodTable with the Uninitialized bit set;
        // we allocate the object that holds the statics and store its address there.
        private static void AllocateStaticBases(byte* start, byte* end)
        {
            for (byte* entry = start; entry < end; entry += sizeof(int))
            {
                nint* slot = (nint*)ReadRelativePointer(entry);
                nint value = (nint)ReadRelativePointer(slot);
                if ((value & Uninitialized) == 0) continue;

                MethodTable* type = (MethodTable*)(value & ~FlagMask);
                byte* obj = (byte*)Heap.AllocateObject(type);
                if ((value & HasPreInitializedData) != 0)
                {
                    // The blob holds the initial values of every field (ilc ran the
                    // static constructor at compile time); copy it after the MethodTable pointer.
                    byte* data = (byte*)ReadRelativePointer((int*)slot + 1);
                    Memory.Copy(obj + sizeof(nint), data, type->BaseSize - 2 * (uint)sizeof(nint));
                }
                *slot = (nint)obj;
                StaticBasesAllocated++;
            }
        }

        private static void RunEagerConstructors(byte* start, byte* end)
        {
            for (byte* entry = start; entry < end; entry += sizeof(int))
            {
                var constructor = (delegate*<void>)ReadRelativePointer(entry);
                constructor();
                EagerConstructorsRun++;
            }
        }

        private static void* ReadRelativePointer(void* address) => (byte*)address + *(int*)address;
    }
}
