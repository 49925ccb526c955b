using System.Reflection;
using System.Text;

namespace AlexNetCompiler.Cuda;

/// <summary>A header handed to NVRTC by name: <c>#include "Name"</c> in a source resolves to <see cref="Source"/>.</summary>
public sealed record CudaHeader(string Name, string Source);

/// <summary>
/// The shape-generic CUDA code (tiled GEMM, layer templates, SGD) that every generated network's
/// <c>CudaSource</c> includes as <c>#include "alexnet_prelude.cuh"</c>. It ships once, in this assembly, rather
/// than in each network; <see cref="CudaNetworkRunner"/> passes it to NVRTC. To compile a generated source
/// with another toolchain (nvcc), write <see cref="Source"/> next to it under <see cref="HeaderName"/>.
/// </summary>
public static class CudaPrelude
{
    /// <summary>The name generated sources include.</summary>
    public const string HeaderName = CudaContract.PreludeHeaderName;

    /// <summary>
    /// ALEXNET_PRELUDE_VERSION in the header. Generated sources fail to compile with a clear #error when they were
    /// generated for another version (a generator and runtime from different packages).
    /// </summary>
    public const int Version = CudaContract.PreludeVersion;

    /// <summary>ALEXNET_THREADS in the header: threads per block of every kernel (the generated launch plans use it).</summary>
    public const int ThreadsPerBlock = CudaContract.ThreadsPerBlock;

    private static readonly Lazy<string> s_source = new(Load);

    /// <summary>The header's text (LF line endings).</summary>
    public static string Source => s_source.Value;

    /// <summary>The headers a generated network's source needs, for <see cref="Nvrtc.Compile"/> and <see cref="KernelCache"/>.</summary>
    public static IReadOnlyList<CudaHeader> Headers => [new CudaHeader(HeaderName, Source)];

    private static string Load()
    {
        const string resource = "AlexNetCompiler.Cuda." + HeaderName;
        using Stream stream = typeof(CudaPrelude).Assembly.GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"The AlexNetCompiler assembly lacks its embedded resource '{resource}'.");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        // The version and block size come from the contract shared with the generator, not from the header file.
        string defines = $"#define ALEXNET_PRELUDE_VERSION {CudaContract.PreludeVersion}\n#define ALEXNET_THREADS {CudaContract.ThreadsPerBlock}\n";
        string text = reader.ReadToEnd().Replace("\r\n", "\n");
        const string marker = "#define ALEXNET_PRELUDE_CUH\n";
        int at = text.IndexOf(marker, StringComparison.Ordinal);
        if (at < 0) throw new InvalidOperationException($"The embedded {HeaderName} lacks its include guard '{marker.TrimEnd()}'.");
        return text.Insert(at + marker.Length, defines);
    }
}
