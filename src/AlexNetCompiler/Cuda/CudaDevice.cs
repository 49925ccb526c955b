using System.Runtime.InteropServices;
using System.Text;

namespace AlexNetCompiler.Cuda;

/// <summary>
/// One GPU with its primary context retained. Every method makes the context current on the calling
/// thread first, so a device can be used from any thread (one at a time).
/// </summary>
public sealed unsafe class CudaDevice : IDisposable
{
    private readonly IntPtr _context;
    private bool _disposed;

    private CudaDevice(int ordinal, int handle, IntPtr context)
    {
        Ordinal = ordinal;
        Handle = handle;
        _context = context;
        MakeCurrent();
        byte* name = stackalloc byte[256];
        CudaDriverApi.Check(CudaDriverApi.cuDeviceGetName(name, 256, handle), "cuDeviceGetName");
        Name = Marshal.PtrToStringUTF8((IntPtr)name) ?? "unknown";
        ComputeCapability = (Attribute(CudaDriverApi.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
                             Attribute(CudaDriverApi.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR));
        MultiprocessorCount = Attribute(CudaDriverApi.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
        ClockRateKHz = Attribute(CudaDriverApi.CU_DEVICE_ATTRIBUTE_CLOCK_RATE);
        MaxSharedMemoryPerBlockOptIn = Attribute(CudaDriverApi.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
        CudaDriverApi.Check(CudaDriverApi.cuDeviceTotalMem(out nuint total, handle), "cuDeviceTotalMem");
        TotalMemoryBytes = (long)total;
        CudaDriverApi.Check(CudaDriverApi.cuDriverGetVersion(out int driver), "cuDriverGetVersion");
        DriverVersion = driver;
    }

    public int Ordinal { get; }
    internal int Handle { get; }
    public string Name { get; }
    public (int Major, int Minor) ComputeCapability { get; }
    /// <summary>The CUBIN target for this device, e.g. "sm_90".</summary>
    public string Architecture => $"sm_{ComputeCapability.Major}{ComputeCapability.Minor}";
    public int MultiprocessorCount { get; }
    public int ClockRateKHz { get; }
    public int MaxSharedMemoryPerBlockOptIn { get; }
    public long TotalMemoryBytes { get; }
    /// <summary>The driver's CUDA version as 1000*major + 10*minor (e.g. 13000).</summary>
    public int DriverVersion { get; }

    public override string ToString() =>
        $"{Name} ({Architecture}, {MultiprocessorCount} SMs, {TotalMemoryBytes / (1 << 20)} MiB, driver CUDA {DriverVersion / 1000}.{DriverVersion % 1000 / 10})";

    /// <summary>Opens a device or throws CudaUnavailableException with one clear sentence saying why not.</summary>
    public static CudaDevice Open(int ordinal = 0)
    {
        if (!TryOpen(ordinal, out CudaDevice? device, out string? reason)) throw new CudaUnavailableException(reason!);
        return device!;
    }

    /// <summary>
    /// Opens a device if there is a driver and a GPU; otherwise returns false and a reason (no driver
    /// library, no device, driver too old, ordinal out of range). Lets "--device auto" fall back to the CPU.
    /// </summary>
    public static bool TryOpen(int ordinal, out CudaDevice? device, out string? reason)
    {
        device = null;
        if (!NativeLibraries.TryLoad(NativeLibraries.Cuda, out _, out string? loadError))
        {
            reason = "No CUDA driver: " + loadError;
            return false;
        }
        try
        {
            int init = CudaDriverApi.cuInit(0);
            if (init == CudaDriverApi.CUDA_ERROR_NO_DEVICE)
            {
                reason = "The CUDA driver is installed but reports no CUDA-capable GPU.";
                return false;
            }
            CudaDriverApi.Check(init, "cuInit");
            CudaDriverApi.Check(CudaDriverApi.cuDeviceGetCount(out int count), "cuDeviceGetCount");
            if (ordinal < 0 || ordinal >= count)
            {
                reason = count == 0 ? "The CUDA driver reports no GPU." : $"GPU {ordinal} does not exist; the driver reports {count}.";
                return false;
            }
            CudaDriverApi.Check(CudaDriverApi.cuDeviceGet(out int handle, ordinal), "cuDeviceGet");
            CudaDriverApi.Check(CudaDriverApi.cuDevicePrimaryCtxRetain(out IntPtr context, handle), "cuDevicePrimaryCtxRetain");
            device = new CudaDevice(ordinal, handle, context);
            reason = null;
            return true;
        }
        catch (CudaException e)
        {
            reason = "The CUDA driver could not open a GPU: " + e.Message;
            return false;
        }
        catch (EntryPointNotFoundException e)
        {
            reason = "The CUDA driver library is too old for this program: " + e.Message;
            return false;
        }
    }

    public void MakeCurrent()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CudaDriverApi.Check(CudaDriverApi.cuCtxSetCurrent(_context), "cuCtxSetCurrent");
    }

    private int Attribute(int attribute)
    {
        CudaDriverApi.Check(CudaDriverApi.cuDeviceGetAttribute(out int value, attribute, Handle), "cuDeviceGetAttribute");
        return value;
    }

    public void Synchronize()
    {
        MakeCurrent();
        CudaDriverApi.Check(CudaDriverApi.cuCtxSynchronize(), "cuCtxSynchronize");
    }

    /// <summary>Allocates device memory (uninitialised).</summary>
    public DeviceBuffer Allocate(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        MakeCurrent();
        CudaDriverApi.Check(CudaDriverApi.cuMemAlloc(out ulong pointer, (nuint)bytes), "cuMemAlloc");
        return new DeviceBuffer(this, pointer, bytes);
    }

    /// <summary>Loads a PTX or CUBIN image produced by NVRTC.</summary>
    public CudaModule LoadModule(NvrtcOutput compiled)
    {
        MakeCurrent();
        byte[] image = compiled.Image;
        if (compiled.Kind == CudaImageKind.Ptx && (image.Length == 0 || image[^1] != 0))
            image = [.. image, 0]; // cuModuleLoadData reads PTX as a NUL-terminated string
        IntPtr module;
        fixed (byte* p = image) CudaDriverApi.Check(CudaDriverApi.cuModuleLoadData(out module, p), "cuModuleLoadData");
        return new CudaModule(this, module);
    }

    public CudaEvent CreateEvent()
    {
        MakeCurrent();
        CudaDriverApi.Check(CudaDriverApi.cuEventCreate(out IntPtr e, CudaDriverApi.CU_EVENT_DEFAULT), "cuEventCreate");
        return new CudaEvent(this, e);
    }

    public CudaStream CreateStream()
    {
        MakeCurrent();
        CudaDriverApi.Check(CudaDriverApi.cuStreamCreate(out IntPtr s, CudaDriverApi.CU_STREAM_NON_BLOCKING), "cuStreamCreate");
        return new CudaStream(this, s);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        CudaDriverApi.cuDevicePrimaryCtxRelease(Handle);
    }
}

/// <summary>A device allocation. Copies are synchronous with respect to the host.</summary>
public sealed unsafe class DeviceBuffer : IDisposable
{
    private readonly CudaDevice _device;

    internal DeviceBuffer(CudaDevice device, ulong pointer, long bytes)
    {
        _device = device;
        Pointer = pointer;
        Bytes = bytes;
    }

    public ulong Pointer { get; private set; }
    public long Bytes { get; }

    public void CopyFrom<T>(ReadOnlySpan<T> source, long byteOffset = 0) where T : unmanaged
    {
        long bytes = (long)source.Length * sizeof(T);
        CheckRange(byteOffset, bytes, nameof(CopyFrom));
        if (bytes == 0) return;
        _device.MakeCurrent();
        fixed (T* p = source)
            CudaDriverApi.Check(CudaDriverApi.cuMemcpyHtoD(Pointer + (ulong)byteOffset, p, (nuint)bytes), "cuMemcpyHtoD");
    }

    public void CopyTo<T>(Span<T> destination, long byteOffset = 0) where T : unmanaged
    {
        long bytes = (long)destination.Length * sizeof(T);
        CheckRange(byteOffset, bytes, nameof(CopyTo));
        if (bytes == 0) return;
        _device.MakeCurrent();
        fixed (T* p = destination)
            CudaDriverApi.Check(CudaDriverApi.cuMemcpyDtoH(p, Pointer + (ulong)byteOffset, (nuint)bytes), "cuMemcpyDtoH");
    }

    /// <summary>Sets every byte to zero (a 32-bit memset; every buffer here holds 4-byte elements).</summary>
    public void Zero(long byteOffset = 0, long bytes = -1)
    {
        if (bytes < 0) bytes = Bytes - byteOffset;
        CheckRange(byteOffset, bytes, nameof(Zero));
        _device.MakeCurrent();
        CudaDriverApi.Check(CudaDriverApi.cuMemsetD32(Pointer + (ulong)byteOffset, 0, (nuint)(bytes / 4)), "cuMemsetD32");
    }

    private void CheckRange(long offset, long bytes, string operation)
    {
        ObjectDisposedException.ThrowIf(Pointer == 0, this);
        if (offset < 0 || bytes < 0 || offset + bytes > Bytes)
            throw new ArgumentOutOfRangeException(nameof(bytes), $"{operation}: {bytes} bytes at offset {offset} do not fit a {Bytes}-byte device buffer.");
    }

    public void Dispose()
    {
        if (Pointer == 0) return;
        _device.MakeCurrent();
        CudaDriverApi.cuMemFree(Pointer);
        Pointer = 0;
    }
}

/// <summary>A loaded module (the kernels of one compiled source).</summary>
public sealed unsafe class CudaModule : IDisposable
{
    private readonly CudaDevice _device;
    private IntPtr _handle;

    internal CudaModule(CudaDevice device, IntPtr handle)
    {
        _device = device;
        _handle = handle;
    }

    public CudaKernel GetKernel(string name)
    {
        _device.MakeCurrent();
        IntPtr function;
        fixed (byte* n = Nvrtc.NulTerminated(name))
            CudaDriverApi.Check(CudaDriverApi.cuModuleGetFunction(out function, _handle, n), "cuModuleGetFunction", name);
        return new CudaKernel(_device, name, function);
    }

    public void Dispose()
    {
        if (_handle == IntPtr.Zero) return;
        _device.MakeCurrent();
        CudaDriverApi.cuModuleUnload(_handle);
        _handle = IntPtr.Zero;
    }
}

/// <summary>One kernel argument: a device pointer, an int, a float or a 64-bit integer.</summary>
public readonly struct KernelArgument
{
    // Arguments are passed by address; the driver reads as many bytes as the parameter's type has.
    // Little-endian: an int or float stored in the low bytes of the 8-byte slot reads back correctly.
    internal readonly ulong Bits;
    private KernelArgument(ulong bits) => Bits = bits;
    public static KernelArgument Pointer(DeviceBuffer buffer) => new(buffer.Pointer);
    public static KernelArgument Int32(int value) => new((uint)value);
    public static KernelArgument Float32(float value) => new(BitConverter.SingleToUInt32Bits(value));
    public static KernelArgument UInt64(ulong value) => new(value);
}

public sealed unsafe class CudaKernel
{
    private readonly CudaDevice _device;

    internal CudaKernel(CudaDevice device, string name, IntPtr handle)
    {
        _device = device;
        Name = name;
        Handle = handle;
    }

    public string Name { get; }
    internal IntPtr Handle { get; }

    /// <summary>Registers per thread, as the loaded image reports it.</summary>
    public int Registers
    {
        get
        {
            CudaDriverApi.Check(CudaDriverApi.cuFuncGetAttribute(out int v, CudaDriverApi.CU_FUNC_ATTRIBUTE_NUM_REGS, Handle), "cuFuncGetAttribute", Name);
            return v;
        }
    }

    /// <summary>Allows dynamic shared memory above the 48 KiB default.</summary>
    public void SetMaxDynamicSharedMemory(int bytes) =>
        CudaDriverApi.Check(CudaDriverApi.cuFuncSetAttribute(Handle, CudaDriverApi.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes), "cuFuncSetAttribute", Name);

    /// <summary>Launches asynchronously on stream (null: the legacy default stream).</summary>
    public void Launch(uint gridX, uint gridY, uint gridZ, uint blockX, uint sharedBytes, CudaStream? stream, ReadOnlySpan<KernelArgument> arguments)
    {
        if (gridX == 0 || gridY == 0 || gridZ == 0 || blockX == 0)
            throw new ArgumentException($"Kernel '{Name}': empty launch grid ({gridX}, {gridY}, {gridZ}) x {blockX}.");
        ulong* values = stackalloc ulong[arguments.Length];
        void** pointers = stackalloc void*[arguments.Length];
        for (int i = 0; i < arguments.Length; i++)
        {
            values[i] = arguments[i].Bits;
            pointers[i] = values + i;
        }
        int result = CudaDriverApi.cuLaunchKernel(Handle, gridX, gridY, gridZ, blockX, 1, 1, sharedBytes,
            stream?.Handle ?? IntPtr.Zero, pointers, null);
        CudaDriverApi.Check(result, "cuLaunchKernel", $"{Name}<<<({gridX}, {gridY}, {gridZ}), {blockX}, {sharedBytes}>>>");
    }
}

public sealed class CudaStream : IDisposable
{
    private readonly CudaDevice _device;
    internal IntPtr Handle { get; private set; }

    internal CudaStream(CudaDevice device, IntPtr handle)
    {
        _device = device;
        Handle = handle;
    }

    public void Synchronize() => CudaDriverApi.Check(CudaDriverApi.cuStreamSynchronize(Handle), "cuStreamSynchronize");

    public void Dispose()
    {
        if (Handle == IntPtr.Zero) return;
        _device.MakeCurrent();
        CudaDriverApi.cuStreamDestroy(Handle);
        Handle = IntPtr.Zero;
    }
}

/// <summary>A timing event; ElapsedMilliseconds measures between two recorded events on the GPU clock.</summary>
public sealed class CudaEvent : IDisposable
{
    private readonly CudaDevice _device;
    private IntPtr _handle;

    internal CudaEvent(CudaDevice device, IntPtr handle)
    {
        _device = device;
        _handle = handle;
    }

    public void Record(CudaStream? stream = null) =>
        CudaDriverApi.Check(CudaDriverApi.cuEventRecord(_handle, stream?.Handle ?? IntPtr.Zero), "cuEventRecord");

    public void Synchronize() => CudaDriverApi.Check(CudaDriverApi.cuEventSynchronize(_handle), "cuEventSynchronize");

    /// <summary>Whether the work recorded before the event has finished, without waiting (cuEventQuery).</summary>
    public bool IsComplete
    {
        get
        {
            _device.MakeCurrent();
            int result = CudaDriverApi.cuEventQuery(_handle);
            if (result == CudaDriverApi.CUDA_ERROR_NOT_READY) return false;
            CudaDriverApi.Check(result, "cuEventQuery");
            return true;
        }
    }

    public static float ElapsedMilliseconds(CudaEvent start, CudaEvent end)
    {
        end.Synchronize();
        CudaDriverApi.Check(CudaDriverApi.cuEventElapsedTime(out float ms, start._handle, end._handle), "cuEventElapsedTime");
        return ms;
    }

    public void Dispose()
    {
        if (_handle == IntPtr.Zero) return;
        _device.MakeCurrent();
        CudaDriverApi.cuEventDestroy(_handle);
        _handle = IntPtr.Zero;
    }
}
