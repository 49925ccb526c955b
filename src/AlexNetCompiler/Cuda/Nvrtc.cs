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
        using var contents = new PinnedStrings(headers.Select(h => h.Source).ToList());
        using var names = new PinnedStrings(headers.Select(h => h.Name).ToList());
        IntPtr program;
        fixed (byte* src = NulTerminated(source))
        fixed (byte* name = NulTerminated(programName))
        {
            NvrtcApi.Check(NvrtcApi.nvrtcCreateProgram(out program, src, name, headers.Count, contents.Pointers, names.Pointers), "nvrtcCreateProgram");
        }
        return program;
    }

    private static int CompileWithOptions(IntPtr program, List<string> options)
    {
        using var pinned = new PinnedStrings(options);
        return NvrtcApi.nvrtcCompileProgram(program, options.Count, pinned.Pointers);
    }

    /// <summary>NUL-terminated UTF-8 copies of strings, pinned, as the char** NVRTC takes (null for none) until disposed.</summary>
    private sealed class PinnedStrings : IDisposable
    {
        private readonly GCHandle[] _handles;
        private GCHandle _array;

        public PinnedStrings(IReadOnlyList<string> strings)
        {
            _handles = new GCHandle[strings.Count];
            var pointers = new IntPtr[strings.Count];
            try
            {
                for (int i = 0; i < strings.Count; i++)
                {
                    _handles[i] = GCHandle.Alloc(NulTerminated(strings[i]), GCHandleType.Pinned);
                    pointers[i] = _handles[i].AddrOfPinnedObject();
                }
                _array = GCHandle.Alloc(pointers, GCHandleType.Pinned);
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        public byte** Pointers => _handles.Length == 0 ? null : (byte**)_array.AddrOfPinnedObject();

        public void Dispose()
        {
            foreach (GCHandle h in _handles) if (h.IsAllocated) h.Free();
            if (_array.IsAllocated) _array.Free();
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
