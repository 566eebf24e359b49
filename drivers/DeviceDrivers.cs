using Drivers.DynamicMemory;
using Drivers.VmBus;

namespace Drivers
{
    // The device drivers of this kernel, each with the VMBus device class it serves.
    public static class DeviceDrivers
    {
        public static unsafe VmbusDriver[] Vmbus() => new VmbusDriver[]
        {
            new VmbusDriver("dynamic-memory"u8, DynamicMemoryDevice.Class, &DynamicMemoryDevice.Probe),
        };

        // Once VMBus is connected and the offers are in (Kernel.Enlighten).
        public static void BindAtBoot() => VmbusDrivers.Bind(Vmbus());
    }
}
