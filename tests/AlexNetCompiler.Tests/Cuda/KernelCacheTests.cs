using AlexNetCompiler.Cuda;
using Xunit.Abstractions;

namespace AlexNetCompiler.Tests.Cuda;

public sealed class KernelCacheTests(ITestOutputHelper output) : IDisposable
{
    private const string Source = """
        extern "C" __global__ void scale(int n, float a, float* y)
        {
            int i = blockIdx.x * blockDim.x + threadIdx.x;
            if (i < n) y[i] *= a;
        }
        """;

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "alexnet-kernel-cache-test-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_directory)) Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public void TheKeyCoversHeaders()
    {
        (int, int) version = (12, 4);
        string plain = KernelCache.Key(Source, "sm_90", [], version);
        string a = KernelCache.Key(Source, "sm_90", [], version, [new CudaHeader("h.cuh", "#define A 1\n")]);
        string b = KernelCache.Key(Source, "sm_90", [], version, [new CudaHeader("h.cuh", "#define A 2\n")]);
        string renamed = KernelCache.Key(Source, "sm_90", [], version, [new CudaHeader("g.cuh", "#define A 1\n")]);
        Assert.Equal(4, new[] { plain, a, b, renamed }.Distinct().Count());
        Assert.Equal(a, KernelCache.Key(Source, "sm_90", [], version, [new CudaHeader("h.cuh", "#define A 1\n")]));
    }

    [Fact]
    public void SecondRequestIsAHitWithTheSameImage()
    {
        if (!NvrtcRequirement.Check(output)) return;
        var cache = new KernelCache(_directory);
        NvrtcOutput first = cache.GetOrCompile(Source, "scale.cu", "sm_80", [], out bool firstHit);
        NvrtcOutput second = cache.GetOrCompile(Source, "scale.cu", "sm_80", [], out bool secondHit);
        Assert.False(firstHit);
        Assert.True(secondHit);
        Assert.Equal(first.Image, second.Image);
        Assert.Equal(first.Kind, second.Kind);
        Assert.Single(Directory.GetFiles(_directory)); // no temporary files left behind
    }

    [Theory]
    [InlineData("flip")]
    [InlineData("truncate")]
    [InlineData("empty")]
    [InlineData("garbage")]
    public void CorruptEntryIsDiscardedAndRebuilt(string damage)
    {
        if (!NvrtcRequirement.Check(output)) return;
        var cache = new KernelCache(_directory);
        NvrtcOutput original = cache.GetOrCompile(Source, "scale.cu", "sm_90", [], out _);
        string path = cache.PathFor(KernelCache.Key(Source, "sm_90", [], Nvrtc.Version));
        byte[] bytes = File.ReadAllBytes(path);
        switch (damage)
        {
            case "flip": bytes[bytes.Length / 2] ^= 0x40; break;              // inside the image: checksum catches it
            case "truncate": bytes = bytes[..(bytes.Length - 7)]; break;
            case "empty": bytes = []; break;
            default: new Random(1).NextBytes(bytes); break;
        }
        File.WriteAllBytes(path, bytes);

        NvrtcOutput rebuilt = cache.GetOrCompile(Source, "scale.cu", "sm_90", [], out bool hit);
        Assert.False(hit);
        Assert.Equal(original.Image, rebuilt.Image);
        // The rebuilt entry is valid again.
        cache.GetOrCompile(Source, "scale.cu", "sm_90", [], out bool hitAfter);
        Assert.True(hitAfter);
    }

    [Fact]
    public void EntryCopiedUnderAnotherKeyIsNotLoaded()
    {
        if (!NvrtcRequirement.Check(output)) return;
        var cache = new KernelCache(_directory);
        cache.GetOrCompile(Source, "scale.cu", "sm_80", [], out _);
        string sm80 = cache.PathFor(KernelCache.Key(Source, "sm_80", [], Nvrtc.Version));
        string sm90 = cache.PathFor(KernelCache.Key(Source, "sm_90", [], Nvrtc.Version));
        File.Copy(sm80, sm90);
        NvrtcOutput sm80Image = cache.GetOrCompile(Source, "scale.cu", "sm_80", [], out _);
        NvrtcOutput result = cache.GetOrCompile(Source, "scale.cu", "sm_90", [], out bool hit);
        Assert.False(hit); // the sm_80 image under the sm_90 name was rejected (its embedded key differs)
        Assert.NotEqual(sm80Image.Image, result.Image);
        cache.GetOrCompile(Source, "scale.cu", "sm_90", [], out bool hitAfter);
        Assert.True(hitAfter);
    }

    [Fact]
    public void KeyDependsOnSourceOptionsArchitectureAndNvrtcVersion()
    {
        string baseline = KernelCache.Key(Source, "sm_80", ["--std=c++17"], (11, 8));
        Assert.Equal(64, baseline.Length);
        Assert.Equal(baseline, KernelCache.Key(Source, "sm_80", ["--std=c++17"], (11, 8)));
        Assert.NotEqual(baseline, KernelCache.Key(Source + " ", "sm_80", ["--std=c++17"], (11, 8)));
        Assert.NotEqual(baseline, KernelCache.Key(Source, "sm_90", ["--std=c++17"], (11, 8)));
        Assert.NotEqual(baseline, KernelCache.Key(Source, "sm_80", ["--std=c++17", "-DALEXNET_TF32"], (11, 8)));
        Assert.NotEqual(baseline, KernelCache.Key(Source, "sm_80", ["--std=c++17"], (12, 0)));
        // Options are separated, so moving text between them changes the key.
        Assert.NotEqual(KernelCache.Key(Source, "sm_80", ["-Da", "b"], (11, 8)), KernelCache.Key(Source, "sm_80", ["-Dab"], (11, 8)));
    }
}
