using System.Runtime.InteropServices;
using System.Text;

namespace AlexNetCompiler.Cuda;

/// <summary>What NVRTC produced: PTX text (for a compute_XX target) or a CUBIN (for an sm_XX target).</summary>
public enum CudaImageKind { Ptx, Cubin }

/// <summary>One compiled program. Image is what cuModuleLoadData takes (PTX includes its terminating NUL).</summary>
public sealed record NvrtcOutput(CudaImageKind Kind, byte[] Image, string Log, string Architecture);

/// <summary>
/// The NVRTC runtime compiler: CUDA C source in, PTX or CUBIN out. Works without a GPU or driver.
/// </summary>
public static unsafe class Nvrtc
{
    /// <summary>True when an NVRTC library loads; reason says why not otherwise.</summary>
    public static bool IsAvailable(out string? reason)
    {
        if (!NativeLibraries.TryLoad(NativeLibraries.Nvrtc, out _, out reason)) return false;
        try
        {
            NvrtcApi.Check(NvrtcApi.nvrtcVersion(out _, out _), "nvrtcVersion");
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or CudaException)
        {
            reason = "NVRTC loaded but is not usable: " + e.Message;
            return false;
        }
    }

    /// <summary>NVRTC's version, e.g. (11, 8) or (13, 0).</summary>
    public static (int Major, int Minor) Version
    {
        get
        {
            RequireLibrary();
            NvrtcApi.Check(NvrtcApi.nvrtcVersion(out int major, out int minor), "nvrtcVersion");
            return (major, minor);
        }
    }

    /// <summary>
    /// Compiles source for architecture ("sm_90" gives a CUBIN, "compute_90" gives PTX) with extra options.
    /// Throws a CudaException carrying NVRTC's log when compilation fails. <paramref name="headers"/> resolve the
    /// source's <c>#include "name"</c> lines (a generated network needs <see cref="CudaPrelude.Headers"/>).
    /// </summary>
    public static NvrtcOutput Compile(string source, string programName, string architecture, IReadOnlyList<string> options, IReadOnlyList<CudaHeader>? headers = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (!architecture.StartsWith("sm_", StringComparison.Ordinal) && !architecture.StartsWith("compute_", StringComparison.Ordinal))
            throw new ArgumentException($"Architecture '{architecture}' must be sm_XX (CUBIN) or compute_XX (PTX).", nameof(architecture));
        RequireLibrary();
        CudaImageKind kind = architecture.StartsWith("sm_", StringComparison.Ordinal) ? CudaImageKind.Cubin : CudaImageKind.Ptx;
        var allOptions = new List<string>(options.Count + 1) { "--gpu-architecture=" + architecture };
        allOptions.AddRange(options);

        IntPtr program = CreateProgram(source, programName, headers ?? []);
        try
        {
            int compileResult = CompileWithOptions(program, allOptions);
            string log = GetLog(program);
            if (compileResult != 0)
            {
                throw new CudaException(
                    $"nvrtcCompileProgram failed for '{programName}' ({architecture}, options: {string.Join(' ', allOptions)}): " +
                    $"{NvrtcApi.ErrorText(compileResult)}{Environment.NewLine}{log}",
                    "nvrtcCompileProgram", compileResult);
            }
            byte[] image;
            if (kind == CudaImageKind.Cubin)
            {
                NvrtcApi.Check(NvrtcApi.nvrtcGetCUBINSize(program, out nuint size), "nvrtcGetCUBINSize");
                image = new byte[(int)size];
                fixed (byte* p = image) NvrtcApi.Check(NvrtcApi.nvrtcGetCUBIN(program, p), "nvrtcGetCUBIN");
            }
            else
            {
                NvrtcApi.Check(NvrtcApi.nvrtcGetPTXSize(program, out nuint size), "nvrtcGetPTXSize");
                image = new byte[(int)size];
                fixed (byte* p = image) NvrtcApi.Check(NvrtcApi.nvrtcGetPTX(program, p), "nvrtcGetPTX");
            }
            return new NvrtcOutput(kind, image, log, architecture);
        }
        finally
        {
            NvrtcApi.nvrtcDestroyProgram(ref program);
        }
    }

    private static IntPtr CreateProgram(string source, string programName, IReadOnlyList<CudaHeader> headers)
    {
        var pinned = new List<GCHandle>(2 * headers.Count);
        try
        {
            var contents = new IntPtr[headers.Count];
            var names = new IntPtr[headers.Count];
            for (int i = 0; i < headers.Count; i++)
            {
                contents[i] = Pin(NulTerminated(headers[i].Source));
                names[i] = Pin(NulTerminated(headers[i].Name));
            }
            IntPtr program;
            fixed (byte* src = NulTerminated(source))
            fixed (byte* name = NulTerminated(programName))
            fixed (IntPtr* c = contents)
            fixed (IntPtr* n = names)
            {
                NvrtcApi.Check(NvrtcApi.nvrtcCreateProgram(out program, src, name, headers.Count,
                    headers.Count == 0 ? null : (byte**)c, headers.Count == 0 ? null : (byte**)n), "nvrtcCreateProgram");
            }
            return program;
        }
        finally
        {
            foreach (GCHandle h in pinned) h.Free();
        }

        IntPtr Pin(byte[] bytes)
        {
            GCHandle handle = GCHandle.Alloc(bytes, GCHandleType.Pinned);
            pinned.Add(handle);
            return handle.AddrOfPinnedObject();
        }
    }

    private static int CompileWithOptions(IntPtr program, List<string> options)
    {
        var handles = new GCHandle[options.Count];
        var pointers = new IntPtr[options.Count];
        try
        {
            for (int i = 0; i < options.Count; i++)
            {
                handles[i] = GCHandle.Alloc(NulTerminated(options[i]), GCHandleType.Pinned);
                pointers[i] = handles[i].AddrOfPinnedObject();
            }
            fixed (IntPtr* p = pointers) return NvrtcApi.nvrtcCompileProgram(program, options.Count, (byte**)p);
        }
        finally
        {
            foreach (GCHandle h in handles) if (h.IsAllocated) h.Free();
        }
    }

    private static string GetLog(IntPtr program)
    {
        NvrtcApi.Check(NvrtcApi.nvrtcGetProgramLogSize(program, out nuint size), "nvrtcGetProgramLogSize");
        if (size <= 1) return "";
        var buffer = new byte[(int)size];
        fixed (byte* p = buffer) NvrtcApi.Check(NvrtcApi.nvrtcGetProgramLog(program, p), "nvrtcGetProgramLog");
        return Encoding.UTF8.GetString(buffer, 0, buffer.Length - 1).Trim();
    }

    private static void RequireLibrary()
    {
        if (!NativeLibraries.TryLoad(NativeLibraries.Nvrtc, out _, out string? error))
            throw new CudaUnavailableException(error!);
    }

    internal static byte[] NulTerminated(string s)
    {
        byte[] bytes = new byte[Encoding.UTF8.GetByteCount(s) + 1];
        Encoding.UTF8.GetBytes(s, bytes);
        return bytes;
    }
}
