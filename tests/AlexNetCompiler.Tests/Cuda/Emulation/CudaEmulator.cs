using System.Diagnostics;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using AlexNetCompiler.Cuda;
using AlexNetCompiler.Testing;

namespace AlexNetCompiler.Tests.Cuda.Emulation;

/// <summary>
/// Builds the CPU emulator of the CUDA driver (tests/CudaEmulator) with g++, together with one generated
/// network's kernels compiled from the same CUDA source, and runs programs against it. The result is a shared
/// library that stands in for libcuda.so.1 when named by ALEXNET_CUDA_PATH, so the unchanged runtime
/// (CudaDevice, CudaNetworkRunner) and the GPU check program run their kernels on the CPU.
/// </summary>
internal static partial class CudaEmulator
{
    public static string RepoRoot { get; } = Metadata("RepoRoot");
    public static string SourceDirectory => Path.Combine(RepoRoot, "tests", "CudaEmulator");
    public static string GpuCheckAssembly { get; } = Metadata("GpuCheckAssembly");

    private static readonly string BuildRoot = Path.Combine(Path.GetTempPath(), "alexnet-cuda-emulator");
    // Test classes run in parallel and may ask for the same library: one build at a time, so none reads a
    // source file another is rewriting.
    private static readonly object BuildLock = new();

    /// <summary>
    /// NVRTC and g++, which the emulator tests need: a missing one fails the test on CI (CI=true) and skips it
    /// elsewhere (<see cref="ToolRequirement"/>).
    /// </summary>
    public static void RequireTools()
    {
        ToolRequirement.Nvrtc();
        ToolRequirement.Require(CompilerAvailable(out string? reason),
            "The CUDA emulator needs g++ (Debian: apt-get install g++) to run the emulator tests: " + reason);
    }

    /// <summary>Whether g++ can be run; the reason when not.</summary>
    private static bool CompilerAvailable(out string? reason)
    {
        try
        {
            var (code, output) = Run("g++", ["--version"], null, TimeSpan.FromSeconds(30));
            reason = code == 0 ? null : "g++ --version failed: " + output;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            reason = "g++ was not found: " + e.Message;
        }
        return reason is null;
    }

    /// <summary>
    /// The emulator library for one network source. tf32 defines ALEXNET_TF32 (tensor-core GEMMs, inputs rounded
    /// as cvt.rna.tf32.f32 does); exactTf32 keeps all mantissa bits in that path, which must then match FP32.
    /// The kernels are compiled once per GEMM tile in gemmTiles (default: the 64 x 64 tile), each tile in its own
    /// translation unit, and a module gets the kernels of the tile its CUBIN names.
    /// Built once per input (cached by hash under the temp folder, written atomically).
    /// </summary>
    public static string BuildNetworkLibrary(string networkName, string source, bool tf32, bool exactTf32 = false, IReadOnlyList<CudaGemmTile>? gemmTiles = null)
    {
        var files = new Dictionary<string, string>
        {
            [networkName + ".cu"] = source,
            [CudaPrelude.HeaderName] = CudaPrelude.Source,
        };
        var sources = new List<string>();
        var signatures = KernelSignatures(CudaPrelude.Source + "\n" + source).ToList();
        foreach (CudaGemmTile tile in gemmTiles ?? [CudaGemmTile.Default])
        {
            var kernels = new StringBuilder();
            kernels.Append("#define ALEXNET_GEMM_BM ").Append(tile.M).Append('\n');
            kernels.Append("#define ALEXNET_GEMM_BN ").Append(tile.N).Append('\n');
            kernels.Append("#undef EMU_GEMM_TILE\n#define EMU_GEMM_TILE \"").Append(tile).Append("\"\n");
            // The tiles' translation units define the same names with different bodies. Templates and inline
            // functions go into an unnamed namespace (else the linker merges them); extern "C" kernels keep external
            // linkage even there, so each is renamed with a macro (#name in EMU_KERNEL still gives the real name).
            foreach (var (name, _) in signatures) kernels.Append("#define ").Append(name).Append(' ').Append(name).Append("__tile_").Append(tile).Append('\n');
            kernels.Append("namespace {\n#include \"").Append(networkName).Append(".cu\"\n}\n");
            foreach (var (name, parameterTypes) in signatures)
                kernels.Append("EMU_KERNEL(").Append(name).Append(", (").Append(string.Join(", ", parameterTypes)).Append("))\n");
            string file = $"kernels_{tile}.cpp";
            files[file] = kernels.ToString();
            sources.Add(file);
        }

        var defines = new List<string>();
        if (tf32) defines.Add("-DALEXNET_TF32");
        if (exactTf32) defines.Add("-DEMU_TF32_EXACT");
        return Build("lib" + networkName + ".so", files, [.. sources, Path.Combine(SourceDirectory, "emulated_driver.cpp")], ["-shared", "-fPIC", .. defines]);
    }

    /// <summary>The emulator's own checks (tests/CudaEmulator/emulator_selftest.cpp) as a program.</summary>
    public static string BuildSelfTest() =>
        Build("emulator-selftest", new Dictionary<string, string>(),
              [Path.Combine(SourceDirectory, "emulator_selftest.cpp"), Path.Combine(SourceDirectory, "emulated_driver.cpp")], []);

    /// <summary>
    /// The fake NCCL (tests/NcclFake/fake_nccl.cpp): the NCCL functions the runtime binds, for the ranks of one process,
    /// on device pointers that are host addresses (the emulator's). Loaded in place of libnccl.so.2 through
    /// ALEXNET_NCCL_PATH.
    /// </summary>
    public static string BuildFakeNccl() =>
        Build("libfakenccl.so", new Dictionary<string, string> { ["fake_nccl.cpp"] = File.ReadAllText(Path.Combine(RepoRoot, "tests", "NcclFake", "fake_nccl.cpp")) },
              ["fake_nccl.cpp"], ["-shared", "-fPIC"], emulationHeader: false);

    /// <summary>Runs a native program built here (the emulator's self-test).</summary>
    public static (int ExitCode, string Output) RunNative(string program, TimeSpan timeout) => Run(program, [], null, timeout);

    /// <summary>Runs the GPU check program with the emulator library as its CUDA driver.</summary>
    public static (int ExitCode, string Output) RunGpuCheck(string library, IEnumerable<string> arguments, TimeSpan timeout, bool reverseThreadOrder = false) =>
        RunProgram(GpuCheckAssembly, arguments, library, timeout, reverseThreadOrder);

    /// <summary>
    /// Runs a .NET program (dotnet app.dll ...) with the emulator library as its CUDA driver (none when null),
    /// its kernel caches in a temporary folder of its own: each run compiles afresh, so a cached CUBIN cannot
    /// hide an NVRTC problem, and the user's cache is left alone.
    /// </summary>
    public static (int ExitCode, string Output) RunProgram(string assembly, IEnumerable<string> arguments, string? library, TimeSpan timeout, bool reverseThreadOrder = false,
        IReadOnlyDictionary<string, string>? extraEnvironment = null)
    {
        DirectoryInfo temp = Directory.CreateTempSubdirectory("alexnet-emulated-gpu-");
        try
        {
            var environment = new Dictionary<string, string> { ["TMPDIR"] = temp.FullName, ["ALEXNET_KERNEL_CACHE"] = Path.Combine(temp.FullName, "kernels") };
            if (library is not null) environment["ALEXNET_CUDA_PATH"] = library;
            environment["ALEXNET_EMULATOR_THREAD_ORDER"] = reverseThreadOrder ? "reverse" : "forward";
            foreach (var (name, value) in extraEnvironment ?? new Dictionary<string, string>()) environment[name] = value;
            return Run("dotnet", [assembly, .. arguments], environment, timeout);
        }
        finally
        {
            temp.Delete(recursive: true);
        }
    }

    /// <summary>extern "C" __global__ kernels of a CUDA source: names and parameter types (qualifiers and names dropped).</summary>
    public static IEnumerable<(string Name, string[] ParameterTypes)> KernelSignatures(string source)
    {
        foreach (Match m in KernelPattern().Matches(source))
        {
            string[] types = m.Groups["parameters"].Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(p => TrailingName().Replace(p.Replace("__restrict__", " ", StringComparison.Ordinal), "").Trim())
                .Select(p => Regex.Replace(p, @"\s+", " ").Replace(" *", "*", StringComparison.Ordinal))
                .ToArray();
            yield return (m.Groups["name"].Value, types);
        }
    }

    [GeneratedRegex(@"extern\s+""C""\s+__global__\s+void\s+(?:__launch_bounds__\s*\([^)]*\)\s*|ALEXNET_GEMM_LAUNCH_BOUNDS\s+)?(?<name>\w+)\s*\((?<parameters>[^)]*)\)")]
    private static partial Regex KernelPattern();

    [GeneratedRegex(@"\s*\b\w+\s*$")]
    private static partial Regex TrailingName();

    private static string Build(string outputName, Dictionary<string, string> files, string[] sources, string[] options, bool emulationHeader = true)
    {
        lock (BuildLock) return BuildLocked(outputName, files, sources, options, emulationHeader);
    }

    private static string BuildLocked(string outputName, Dictionary<string, string> files, string[] sources, string[] options, bool emulationHeader)
    {
        string[] arguments =
        [
            "-std=c++17", "-O2", "-march=native", "-Wall", "-Wno-unknown-pragmas",
            .. emulationHeader ? new[] { "-include", Path.Combine(SourceDirectory, "cuda_emulation.h") } : [], "-I.", .. options,
        ];
        // The key covers everything the output depends on: the emulator's sources, the generated files, the flags.
        var key = new StringBuilder();
        foreach (string file in new[] { "cuda_emulation.h", "emulated_driver.cpp", "emulator_selftest.cpp" })
            key.Append(File.ReadAllText(Path.Combine(SourceDirectory, file))).Append('\0');
        foreach (var (name, text) in files.OrderBy(f => f.Key, StringComparer.Ordinal)) key.Append(name).Append('\0').Append(text).Append('\0');
        key.AppendJoin(' ', arguments).Append('\0').AppendJoin(' ', sources);
        string hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(key.ToString())))[..16].ToLowerInvariant();
        string directory = Path.Combine(BuildRoot, hash);
        string output = Path.Combine(directory, outputName);
        if (File.Exists(output)) return output;

        Directory.CreateDirectory(directory);
        foreach (var (name, text) in files) File.WriteAllText(Path.Combine(directory, name), text);
        // One g++ per source, in parallel (a network's kernels per GEMM tile are the slow part), then the link.
        string partial = output + "." + Environment.ProcessId + ".tmp";
        string[] objects = sources.Select((source, i) => $"{Path.GetFileNameWithoutExtension(source)}.{i}.{Environment.ProcessId}.o").ToArray();
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        Parallel.For(0, sources.Length, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            var (code, log) = Run("g++", [.. arguments, "-c", sources[i], "-o", objects[i]], null, TimeSpan.FromMinutes(5), directory);
            if (code != 0) failures.Add($"{sources[i]}:\n{log}");
        });
        if (!failures.IsEmpty) throw new InvalidOperationException($"g++ could not build the CUDA emulator ({outputName}) in {directory}:\n{string.Join("\n", failures)}");
        var (linkCode, linkLog) = Run("g++", [.. arguments.Where(a => a.StartsWith("-std", StringComparison.Ordinal) || a == "-O2"), .. options, .. objects, "-o", partial], null, TimeSpan.FromMinutes(5), directory);
        if (linkCode != 0) throw new InvalidOperationException($"g++ could not link the CUDA emulator ({outputName}) in {directory}:\n{linkLog}");
        foreach (string o in objects) File.Delete(Path.Combine(directory, o));
        File.Move(partial, output, overwrite: true);
        return output;
    }

    public static (int ExitCode, string Output) Run(string program, IEnumerable<string> arguments, Dictionary<string, string>? environment, TimeSpan timeout, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (string a in arguments) start.ArgumentList.Add(a);
        foreach (var (name, value) in environment ?? []) start.Environment[name] = value;
        using Process process = Process.Start(start)!;
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} did not finish within {timeout.TotalMinutes:F0} min:\n{output}");
        }
        process.WaitForExit();
        lock (output) return (process.ExitCode, output.ToString());
    }

    private static string Metadata(string key) =>
        typeof(CudaEmulator).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == key)?.Value
        ?? throw new InvalidOperationException($"The test assembly has no '{key}' metadata (see AlexNetCompiler.Tests.csproj).");
}
