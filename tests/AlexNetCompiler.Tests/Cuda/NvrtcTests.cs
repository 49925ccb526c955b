using System.Text;
using AlexNetCompiler.Cuda;
using AlexNetCompiler.Testing;

namespace AlexNetCompiler.Tests.Cuda;

public sealed class NvrtcTests
{
    private const string Saxpy = """
        extern "C" __global__ void saxpy(int n, float a, const float* __restrict__ x, float* __restrict__ y)
        {
            int i = blockIdx.x * blockDim.x + threadIdx.x;
            if (i < n) y[i] = fmaf(a, x[i], y[i]);
        }
        """;

    [SkippableTheory]
    [InlineData("sm_80")]
    [InlineData("sm_90")]
    public void CompilesHandWrittenKernelToCubin(string arch)
    {
        ToolRequirement.Nvrtc();
        NvrtcOutput result = Nvrtc.Compile(Saxpy, "saxpy.cu", arch, ["--ptxas-options=-v"]);
        Assert.Equal(CudaImageKind.Cubin, result.Kind);
        // An ELF image: 0x7F 'E' 'L' 'F'.
        Assert.True(result.Image.Length > 64);
        Assert.Equal(new byte[] { 0x7F, (byte)'E', (byte)'L', (byte)'F' }, result.Image[..4]);
        Assert.DoesNotContain("warning", result.Log, StringComparison.OrdinalIgnoreCase);
        Assert.Contains($"for '{arch}'", result.Log, StringComparison.Ordinal); // ptxas -v reports the target
    }

    [SkippableFact]
    public void NamedHeadersResolveIncludes_AndAMissingOneIsACompileErrorNamingIt()
    {
        ToolRequirement.Nvrtc();
        const string source = "#include \"scale_factor.cuh\"\nextern \"C\" __global__ void k(float* y) { y[threadIdx.x] *= SCALE_FACTOR; }\n";
        NvrtcOutput result = Nvrtc.Compile(source, "k.cu", "compute_80", [], [new CudaHeader("scale_factor.cuh", "#define SCALE_FACTOR 3.5f\n")]);
        string ptx = Encoding.ASCII.GetString(result.Image);
        Assert.Contains("0f40600000", ptx, StringComparison.Ordinal); // 3.5f as a PTX hex float literal

        var e = Assert.Throws<CudaException>(() => Nvrtc.Compile(source, "k.cu", "compute_80", []));
        Assert.Contains("scale_factor.cuh", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ThePreludeShipsInTheRuntime_WithTheVersionTheGeneratorTargets()
    {
        string prelude = CudaPrelude.Source;
        Assert.Contains($"#define ALEXNET_PRELUDE_VERSION {CudaPrelude.Version}\n", prelude, StringComparison.Ordinal);
        Assert.Contains("sgd_update", prelude, StringComparison.Ordinal);
        Assert.DoesNotContain("\r", prelude, StringComparison.Ordinal);
        // Every generated source includes it and checks the same version.
        Assert.Contains($"#include \"{CudaPrelude.HeaderName}\"", FashionMnist.FashionNet.CudaSource, StringComparison.Ordinal);
        Assert.Contains($"ALEXNET_PRELUDE_VERSION != {CudaPrelude.Version}\n", FashionMnist.FashionNet.CudaSource, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void AGeneratedSourceRejectsAPreludeOfAnotherVersion()
    {
        ToolRequirement.Nvrtc();
        string wrongVersion = CudaPrelude.Source.Replace($"#define ALEXNET_PRELUDE_VERSION {CudaPrelude.Version}", "#define ALEXNET_PRELUDE_VERSION 999");
        var e = Assert.Throws<CudaException>(() => Nvrtc.Compile(FashionMnist.FashionNet.CudaSource, "FashionNet.cu", "compute_80", ["--std=c++17"],
            [new CudaHeader(CudaPrelude.HeaderName, wrongVersion)]));
        Assert.Contains("runtime and generator come from different versions", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void CompilesHandWrittenKernelToPtx()
    {
        ToolRequirement.Nvrtc();
        NvrtcOutput result = Nvrtc.Compile(Saxpy, "saxpy.cu", "compute_80", []);
        Assert.Equal(CudaImageKind.Ptx, result.Kind);
        string ptx = Encoding.ASCII.GetString(result.Image).TrimEnd('\0');
        Assert.Contains(".target sm_80", ptx, StringComparison.Ordinal);
        Assert.Contains(".entry saxpy", ptx, StringComparison.Ordinal);
        Assert.Equal(0, result.Image[^1]); // cuModuleLoadData needs the terminating NUL
    }

    [SkippableFact]
    public void CompileErrorThrowsWithLogAndCallName()
    {
        ToolRequirement.Nvrtc();
        var e = Assert.Throws<CudaException>(() => Nvrtc.Compile("extern \"C\" __global__ void broken() { undeclared_name = 1; }", "broken.cu", "sm_80", []));
        Assert.Equal("nvrtcCompileProgram", e.Call);
        Assert.Contains("broken.cu", e.Message, StringComparison.Ordinal);
        Assert.Contains("undeclared_name", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void VersionIsReported()
    {
        ToolRequirement.Nvrtc();
        (int major, int minor) = Nvrtc.Version;
        Assert.InRange(major, 11, 99);
        Assert.InRange(minor, 0, 99);
    }

    [Fact]
    public void RejectsUnknownArchitectureSpelling() =>
        Assert.Throws<ArgumentException>(() => Nvrtc.Compile(Saxpy, "saxpy.cu", "90", []));
}

public sealed class CudaDriverTests
{
    [Fact]
    public void MissingLibraryErrorListsEveryNameTried()
    {
        (IntPtr handle, string? error) = NativeLibraries.LoadFirst(["libdoes-not-exist.so.1", "libnor-this.so"], "the CUDA driver library");
        Assert.Equal(IntPtr.Zero, handle);
        Assert.Contains("libdoes-not-exist.so.1", error, StringComparison.Ordinal);
        Assert.Contains("libnor-this.so", error, StringComparison.Ordinal);
        Assert.StartsWith("Could not load the CUDA driver library", error, StringComparison.Ordinal);
    }

    [Fact]
    public void TryOpenGivesOneClearReasonWithoutADriver()
    {
        bool hasDriver = NativeLibraries.LoadFirst(NativeLibraries.CudaCandidates, "driver").Handle != IntPtr.Zero;
        bool opened = CudaDevice.TryOpen(0, out CudaDevice? device, out string? reason);
        using (device)
        {
            if (!hasDriver)
            {
                Assert.False(opened);
                Assert.Null(device);
                Assert.StartsWith("No CUDA driver: Could not load the CUDA driver library", reason, StringComparison.Ordinal);
                var e = Assert.Throws<CudaUnavailableException>(() => CudaDevice.Open());
                Assert.Equal(reason, e.Message);
            }
            else
            {
                // With a driver: either a device opened, or the reason says why not; never both, never neither.
                Assert.Equal(opened, device is not null);
                Assert.Equal(opened, reason is null);
            }
        }
    }

    [Fact]
    public void DriverErrorsNameTheCallAndKernel()
    {
        var e = new CudaException("cuLaunchKernel failed (kernel 'conv1_forward'): CUDA_ERROR_INVALID_VALUE: invalid argument", "cuLaunchKernel", 1, "conv1_forward");
        Assert.Equal("conv1_forward", e.Kernel);
        Assert.Equal("cuLaunchKernel", e.Call);
    }
}
