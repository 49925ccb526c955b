using System.Runtime.InteropServices;

namespace FashionMnist.App;

public enum DeviceRequest { Auto, Cpu, Cuda }

/// <summary>Chooses where training runs. The CPU always works; CUDA needs the NVIDIA driver and a GPU runner for the network.</summary>
public static class DeviceSelector
{
    /// <summary>Returns the device to use ("cpu") and, when auto fell back, a one-line notice. Throws for an impossible request.</summary>
    public static (string Device, string? Notice) Resolve(DeviceRequest request)
    {
        switch (request)
        {
            case DeviceRequest.Cpu:
                return ("cpu", null);
            case DeviceRequest.Auto:
                return ("cpu", $"Device auto: {CudaUnavailableReason()}; training on the CPU.");
            default:
                throw new NotSupportedException($"--device cuda: {CudaUnavailableReason()}. Use --device cpu or auto.");
        }
    }

    private static string CudaUnavailableReason()
    {
        string[] driverNames = OperatingSystem.IsWindows() ? ["nvcuda.dll"] : ["libcuda.so.1", "libcuda.so"];
        foreach (string name in driverNames)
        {
            if (NativeLibrary.TryLoad(name, out IntPtr handle))
            {
                NativeLibrary.Free(handle);
                return "an NVIDIA driver is present but this program has no GPU runner for FashionNet yet";
            }
        }
        return "no NVIDIA driver found (" + string.Join(", ", driverNames) + ")";
    }
}
