using System.Runtime.InteropServices;

namespace AlexNetCompiler.Cuda;

/// <summary>
/// The CUDA driver API functions the runtime uses (cuda.h, CUDA 11+ ABI). Versioned entry points
/// (_v2) are the ones cuda.h maps the plain names to. CUdeviceptr is 64-bit; handles are pointers.
/// </summary>
internal static unsafe partial class CudaDriverApi
{
    internal const int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
    internal const int CU_DEVICE_ATTRIBUTE_CLOCK_RATE = 13;
    internal const int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
    internal const int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
    internal const int CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;
    internal const int CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;
    internal const int CU_FUNC_ATTRIBUTE_NUM_REGS = 4;
    internal const int CU_EVENT_DEFAULT = 0;
    internal const int CU_STREAM_NON_BLOCKING = 1;
    internal const int CUDA_ERROR_NO_DEVICE = 100;
    /// <summary>cuda.h: what cuEventQuery returns while the work before the event is still running.</summary>
    internal const int CUDA_ERROR_NOT_READY = 600;

    static CudaDriverApi() => NativeLibraries.EnsureRegistered();

    [LibraryImport(NativeLibraries.Cuda)] internal static partial int cuInit(uint flags);
    [LibraryImport(NativeLibraries.Cuda)] internal static partial int cuDriverGetVersion(out int version);
    [LibraryImport(NativeLibraries.Cuda)] internal static partial int cuGetErrorName(int error, out IntPtr name);
    [LibraryImport(NativeLibraries.Cuda)] internal static partial int cuGetErrorString(int error, out IntPtr text);

    [LibraryImport(NativeLibraries.Cuda)] internal static partial int cuDeviceGetCount(out int count);
    [LibraryImport(NativeLibraries.Cuda)] internal static partial int cuDeviceGet(out int device, int ordinal);
    [LibraryImport(NativeLibraries.Cuda)] internal static partial int cuDeviceGetName(byte* name, int length, int device);
    [LibraryImport(NativeLibraries.Cuda)] internal static partial int cuDeviceGetAttribute(out int value, int attribute, int device);
    [LibraryImport(NativeLibraries.Cuda, EntryPoint = "cuDeviceTotalMem_v2")] internal static partial int cuDeviceTotalMem(out nuint bytes, int device);

    [LibraryImport(NativeLibraries.Cuda)] internal static partial int cuDevicePrimaryCtxRetain(out IntPtr context, int device);
    [LibraryImport(NativeLibraries.Cuda, EntryPoint = "cuDevicePrimaryCtxRelease_v2")] internal static partial int cuDevicePrimaryCtxRelease(int device);
    [LibraryImport(NativeLibraries.Cuda)] internal static partial int cuCtxSetCurrent(IntPtr context);
    [LibraryImport(NativeLibraries.Cuda)] internal static partial int cuCtxSynchronize();

    [LibraryImport(NativeLibraries.Cuda, EntryPoint = "cuMemAlloc_v2")] internal static partial int cuMemAlloc(out ulong pointer, nuint bytes);
    [LibraryImport(NativeLibraries.Cuda, EntryPoint = "cuMemFree_v2")] internal static partial int cuMemFree(ulong pointer);
    [LibraryImport(NativeLibraries.Cuda, EntryPoint = "cuMemcpyHtoD_v2")] internal static partial int cuMemcpyHtoD(ulong destination, void* source, nuint bytes);
    [LibraryImport(NativeLibraries.Cuda, EntryPoint = "cuMemcpyDtoH_v2")] internal static partial int cuMemcpyDtoH(void* destination, ulong source, nuint bytes);
    [LibraryImport(NativeLibraries.Cuda, EntryPoint = "cuMemcpyDtoD_v2")] internal static partial int cuMemcpyDtoD(ulong destination, ulong source, nuint bytes);
    [LibraryImport(NativeLibraries.Cuda, EntryPoint = "cuMemsetD32Async")] internal static partial int cuMemsetD32Async(ulong destination, uint value, nuint count, IntPtr stream);
    [LibraryImport(NativeLibraries.Cuda, EntryPoint = "cuMemsetD32_v2")] internal static partial int cuMemsetD32(ulong destination, uint value, nuint count);

    [LibraryImport(NativeLibraries.Cuda)] internal static partial int cuModuleLoadData(out IntPtr module, void* image);
    [LibraryImport(NativeLibraries.Cuda)] internal static partial int cuModuleGetFunction(out IntPtr function, IntPtr module, byte* name);
    [LibraryImport(NativeLibraries.Cuda)] internal static partial int cuModuleUnload(IntPtr module);
    [LibraryImport(NativeLibraries.Cuda)] internal static partial int cuFuncSetAttribute(IntPtr function, int attribute, int value);
    [LibraryImport(NativeLibraries.Cuda)] internal static partial int cuFuncGetAttribute(out int value, int attribute, IntPtr function);

    [LibraryImport(NativeLibraries.Cuda)]
    internal static partial int cuLaunchKernel(IntPtr function,
        uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, uint blockZ,
        uint sharedBytes, IntPtr stream, void** parameters, void** extra);

    [LibraryImport(NativeLibraries.Cuda)] internal static partial int cuStreamCreate(out IntPtr stream, uint flags);
    [LibraryImport(NativeLibraries.Cuda, EntryPoint = "cuStreamDestroy_v2")] internal static partial int cuStreamDestroy(IntPtr stream);
    [LibraryImport(NativeLibraries.Cuda)] internal static partial int cuStreamSynchronize(IntPtr stream);

    [LibraryImport(NativeLibraries.Cuda)] internal static partial int cuEventCreate(out IntPtr evt, uint flags);
    [LibraryImport(NativeLibraries.Cuda)] internal static partial int cuEventRecord(IntPtr evt, IntPtr stream);
    [LibraryImport(NativeLibraries.Cuda)] internal static partial int cuEventSynchronize(IntPtr evt);
    [LibraryImport(NativeLibraries.Cuda)] internal static partial int cuEventQuery(IntPtr evt);
    [LibraryImport(NativeLibraries.Cuda)] internal static partial int cuEventElapsedTime(out float milliseconds, IntPtr start, IntPtr end);
    [LibraryImport(NativeLibraries.Cuda, EntryPoint = "cuEventDestroy_v2")] internal static partial int cuEventDestroy(IntPtr evt);

    /// <summary>Throws a CudaException naming the call (and kernel) when result is not CUDA_SUCCESS.</summary>
    internal static void Check(int result, string call, string? kernel = null)
    {
        if (result == 0) return;
        throw new CudaException(Describe(result, call, kernel), call, result, kernel);
    }

    internal static string Describe(int result, string call, string? kernel)
    {
        string name = "CUDA_ERROR_" + result.ToString(System.Globalization.CultureInfo.InvariantCulture);
        string text = "unknown error";
        try
        {
            if (cuGetErrorName(result, out IntPtr n) == 0 && n != IntPtr.Zero) name = Marshal.PtrToStringUTF8(n) ?? name;
            if (cuGetErrorString(result, out IntPtr s) == 0 && s != IntPtr.Zero) text = Marshal.PtrToStringUTF8(s) ?? text;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // The error-name calls live in the same library; if it is gone there is nothing better to say.
        }
        string where = kernel is null ? "" : $" (kernel '{kernel}')";
        return $"{call} failed{where}: {name}: {text}";
    }
}
