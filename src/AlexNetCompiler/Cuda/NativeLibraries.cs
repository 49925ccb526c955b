using System.Reflection;
using System.Runtime.InteropServices;

namespace AlexNetCompiler.Cuda;

/// <summary>
/// Maps the logical library names used by the [LibraryImport] declarations ("cuda", "nvrtc", "libc") to the files
/// that exist on this machine. The driver ships as libcuda.so.1 / nvcuda.dll; NVRTC's soname carries the
/// toolkit's major version (libnvrtc.so.13, .12, and .11.2 for every 11.x), so each candidate is probed in turn,
/// newest first. ALEXNET_NVRTC_PATH / ALEXNET_CUDA_PATH name an exact file and win over the probe.
/// </summary>
internal static class NativeLibraries
{
    internal const string Cuda = "alexnet-cuda-driver";
    internal const string Nvrtc = "alexnet-nvrtc";
    /// <summary>Open MPI's C library (Distributed/MpiApi.cs); ALEXNET_MPI_PATH names another file.</summary>
    internal const string Mpi = "alexnet-mpi";
    /// <summary>NVIDIA's NCCL (Distributed/NcclApi.cs); ALEXNET_NCCL_PATH names another file.</summary>
    internal const string Nccl = "alexnet-nccl";
    /// <summary>The C library the process already runs on (glibc or musl), found through the main program's symbols.</summary>
    internal const string Libc = "alexnet-libc";

    private static readonly object Gate = new();
    private static bool _registered;
    private static readonly Dictionary<string, (IntPtr Handle, string? Error)> Loaded = new();

    internal static readonly string[] CudaCandidates = OperatingSystem.IsWindows()
        ? ["nvcuda.dll"]
        : ["libcuda.so.1", "libcuda.so"];

    internal static string[] NvrtcCandidates()
    {
        if (!OperatingSystem.IsWindows())
            return ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"];
        // Windows names carry major+minor ("nvrtc64_120_0.dll", "nvrtc64_112_0.dll"): probe the known ones,
        // then any that sits in CUDA_PATH/bin.
        var names = new List<string> { "nvrtc64_130_0.dll", "nvrtc64_120_0.dll", "nvrtc64_112_0.dll", "nvrtc64_111_0.dll" };
        string? cudaPath = Environment.GetEnvironmentVariable("CUDA_PATH");
        if (cudaPath is not null)
        {
            string bin = Path.Combine(cudaPath, "bin");
            if (Directory.Exists(bin))
                names.AddRange(Directory.GetFiles(bin, "nvrtc64_*.dll").OrderDescending());
        }
        return names.ToArray();
    }

    /// <summary>Installs the resolver once. The AlexNetCompiler assembly has no other DllImport resolver.</summary>
    internal static void EnsureRegistered()
    {
        lock (Gate)
        {
            if (_registered) return;
            NativeLibrary.SetDllImportResolver(typeof(NativeLibraries).Assembly, Resolve);
            _registered = true;
        }
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (libraryName == Cuda) return TryLoad(Cuda, out IntPtr h, out _) ? h : IntPtr.Zero;
        if (libraryName == Nvrtc) return TryLoad(Nvrtc, out IntPtr h, out _) ? h : IntPtr.Zero;
        if (libraryName == Mpi) return TryLoad(Mpi, out IntPtr h, out _) ? h : IntPtr.Zero;
        if (libraryName == Nccl) return TryLoad(Nccl, out IntPtr h, out _) ? h : IntPtr.Zero;
        // dlopen(NULL): its symbols include those of the C library every .NET process (CoreCLR or NativeAOT) links,
        // whatever its file is called (libc.so.6, ld-musl-*.so.1).
        if (libraryName == Libc) return NativeLibrary.GetMainProgramHandle();
        return IntPtr.Zero;
    }

    /// <summary>Loads (once) the library behind a logical name; error says which files were tried.</summary>
    internal static bool TryLoad(string logicalName, out IntPtr handle, out string? error)
    {
        lock (Gate)
        {
            if (!Loaded.TryGetValue(logicalName, out var entry))
            {
                entry = Load(logicalName);
                Loaded[logicalName] = entry;
            }
            handle = entry.Handle;
            error = entry.Error;
            return handle != IntPtr.Zero;
        }
    }

    private static (IntPtr, string?) Load(string logicalName)
    {
        if (logicalName == Mpi)
        {
            // libmpi.so.40 is the soname of Open MPI 3.x and 4.x (Debian 12: openmpi-bin 4.1.4).
            string? mpiPath = Environment.GetEnvironmentVariable("ALEXNET_MPI_PATH");
            return LoadFirst(mpiPath is { Length: > 0 } ? [mpiPath] : ["libmpi.so.40", "libmpi.so"],
                "Open MPI's libmpi (install openmpi-bin, or set ALEXNET_MPI_PATH)");
        }
        if (logicalName == Nccl)
        {
            // libnccl.so.2 is the soname of every NCCL 2.x (the nvidia-nccl-cu12/-cu13 wheels, the libnccl2 package).
            string? ncclPath = Environment.GetEnvironmentVariable("ALEXNET_NCCL_PATH");
            return LoadFirst(ncclPath is { Length: > 0 } ? [ncclPath] : ["libnccl.so.2", "libnccl.so"],
                "NVIDIA's NCCL library libnccl.so.2 (pip install nvidia-nccl-cu13, or the libnccl2 package; or set ALEXNET_NCCL_PATH to the file)");
        }
        bool isCuda = logicalName == Cuda;
        string? overridePath = Environment.GetEnvironmentVariable(isCuda ? "ALEXNET_CUDA_PATH" : "ALEXNET_NVRTC_PATH");
        string[] candidates = overridePath is { Length: > 0 } ? [overridePath] : isCuda ? CudaCandidates : NvrtcCandidates();
        string what = isCuda ? "the CUDA driver library (is an NVIDIA driver installed?)" : "the NVRTC library (CUDA runtime compiler)";
        return LoadFirst(candidates, what);
    }

    /// <summary>Loads the first candidate that exists; the error lists every name tried.</summary>
    internal static (IntPtr Handle, string? Error) LoadFirst(string[] candidates, string what)
    {
        foreach (string name in candidates)
        {
            if (NativeLibrary.TryLoad(name, out IntPtr h)) return (h, null);
        }
        return (IntPtr.Zero, $"Could not load {what}; tried {string.Join(", ", candidates)}.");
    }
}
