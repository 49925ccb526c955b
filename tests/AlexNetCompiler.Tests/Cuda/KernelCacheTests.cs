using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using AlexNetCompiler.Cuda;
using AlexNetCompiler.Testing;

namespace AlexNetCompiler.Tests.Cuda;

public sealed class KernelCacheTests : IDisposable
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

    [SkippableFact]
    public void SecondRequestIsAHitWithTheSameImage()
    {
        ToolRequirement.Nvrtc();
        var cache = new KernelCache(_directory);
        NvrtcOutput first = cache.GetOrCompile(Source, "scale.cu", "sm_80", [], out bool firstHit);
        NvrtcOutput second = cache.GetOrCompile(Source, "scale.cu", "sm_80", [], out bool secondHit);
        Assert.False(firstHit);
        Assert.True(secondHit);
        Assert.Equal(first.Image, second.Image);
        Assert.Equal(first.Kind, second.Kind);
        Assert.Single(Directory.GetFiles(_directory)); // no temporary files left behind
    }

    [SkippableTheory]
    [InlineData("flip")]
    [InlineData("truncate")]
    [InlineData("empty")]
    [InlineData("garbage")]
    public void CorruptEntryIsDiscardedAndRebuilt(string damage)
    {
        ToolRequirement.Nvrtc();
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

    [SkippableFact]
    public void EntryCopiedUnderAnotherKeyIsNotLoaded()
    {
        ToolRequirement.Nvrtc();
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

    // --- Trust: only regular files this user owns and can read are loaded; nothing escapes the cache. -----------------

    /// <summary>An NVRTC version no real NVRTC reports, so made-up entries never sit under a real compilation's key.</summary>
    private static readonly (int, int) AnyVersion = (0, 0);

    /// <summary>Stores a made-up entry through the cache's own writer (no NVRTC needed); returns its key and path.</summary>
    private static (string Key, string Path) StoreFakeEntry(KernelCache cache, string architecture = "sm_90")
    {
        string key = KernelCache.Key(Source, architecture, [], AnyVersion);
        string path = cache.PathFor(key);
        cache.Write(path, key, new NvrtcOutput(CudaImageKind.Cubin, [1, 2, 3, 4, 5], "log", architecture));
        Assert.True(KernelCache.TryRead(path, key, architecture, out _));
        return (key, path);
    }

    [SkippableFact]
    [UnsupportedOSPlatform("windows")] // the skip below keeps Windows out
    public void TheDirectoryIsCreatedForItsOwnerOnlyAndEntriesAreOwnerOnly()
    {
        Skip.If(OperatingSystem.IsWindows(), "Unix file modes only: on Windows the cache lives in the user's own profile.");
        string nested = Path.Combine(_directory, "cache", "kernels");
        var cache = new KernelCache(nested);
        (_, string entry) = StoreFakeEntry(cache);
        const UnixFileMode ownerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        Assert.Equal(ownerOnly, File.GetUnixFileMode(nested)); // missing parents get the usual mode; this one guards
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(entry));
        Assert.Single(Directory.GetFiles(nested)); // no temporary file left
    }

    [SkippableFact]
    public void AnEntryOwnedByAnotherUserIsIgnoredAndReplaced()
    {
        SkipUnlessRootOnLinux();
        var cache = new KernelCache(_directory);
        (string key, string path) = StoreFakeEntry(cache);
        Assert.Equal(0, Libc.chown(path, 12345, 12345));

        Assert.False(KernelCache.TryRead(path, key, "sm_90", out NvrtcOutput? read)); // valid content, foreign owner
        Assert.Null(read);
        Assert.True(File.Exists(path)); // not this user's file to delete; the next write replaces it
        cache.Write(path, key, new NvrtcOutput(CudaImageKind.Cubin, [9, 9], "", "sm_90"));
        Assert.True(KernelCache.TryRead(path, key, "sm_90", out read));
        Assert.Equal([9, 9], read!.Image);
    }

    [SkippableFact]
    public void ACompiledEntryOwnedByAnotherUserIsRecompiled()
    {
        SkipUnlessRootOnLinux();
        ToolRequirement.Nvrtc();
        var cache = new KernelCache(_directory);
        cache.GetOrCompile(Source, "scale.cu", "sm_90", [], out _);
        string compiled = cache.PathFor(KernelCache.Key(Source, "sm_90", [], Nvrtc.Version));
        Assert.Equal(0, Libc.chown(compiled, 12345, 12345));
        cache.GetOrCompile(Source, "scale.cu", "sm_90", [], out bool hit);
        Assert.False(hit);
        cache.GetOrCompile(Source, "scale.cu", "sm_90", [], out bool hitAfter);
        Assert.True(hitAfter); // the recompiled entry replaced the foreign one
    }

    private static void SkipUnlessRootOnLinux()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "Linux only (chown).");
        Skip.If(Libc.geteuid() != 0, "Giving a file to another user needs root.");
    }

    [SkippableFact]
    [SupportedOSPlatform("linux")] // the skip below keeps the other platforms out
    public void AnUnreadableEntryIsIgnored()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "Linux only (file modes and capabilities).");
        var cache = new KernelCache(_directory);
        (string key, string path) = StoreFakeEntry(cache);
        File.SetUnixFileMode(path, UnixFileMode.None);
        bool readFake = true;
        WithoutRootsFileAccessOverride(() =>
        {
            Assert.Throws<UnauthorizedAccessException>(() => File.ReadAllBytes(path)); // the entry really is unreadable
            readFake = KernelCache.TryRead(path, key, "sm_90", out _);
        });
        Assert.False(readFake);
    }

    [SkippableFact]
    [SupportedOSPlatform("linux")] // the skip below keeps the other platforms out
    public void AnUnreadableCompiledEntryIsRecompiledAndNoExceptionEscapes()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "Linux only (file modes and capabilities).");
        ToolRequirement.Nvrtc();
        var cache = new KernelCache(_directory);
        cache.GetOrCompile(Source, "scale.cu", "sm_90", [], out _);
        File.SetUnixFileMode(cache.PathFor(KernelCache.Key(Source, "sm_90", [], Nvrtc.Version)), UnixFileMode.None);
        bool hit = true;
        WithoutRootsFileAccessOverride(() => cache.GetOrCompile(Source, "scale.cu", "sm_90", [], out hit)); // must not throw
        Assert.False(hit);
        cache.GetOrCompile(Source, "scale.cu", "sm_90", [], out bool hitAfter);
        Assert.True(hitAfter); // the recompiled entry replaced the unreadable one
    }

    [SkippableFact]
    public void ASymbolicLinkIsNotFollowed()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "Linux only (symbolic links as the cache sees them).");
        var cache = new KernelCache(_directory);
        (string key, string path) = StoreFakeEntry(cache);
        string elsewhere = Path.Combine(_directory, "elsewhere.bin");
        File.Move(path, elsewhere);
        File.CreateSymbolicLink(path, elsewhere);
        Assert.False(KernelCache.TryRead(path, key, "sm_90", out _));
    }

    [SkippableFact]
    public void AFifoInPlaceOfAnEntryDoesNotBlock()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "Linux only (mkfifo).");
        var cache = new KernelCache(_directory);
        Directory.CreateDirectory(_directory);
        string key = KernelCache.Key(Source, "sm_90", [], AnyVersion);
        string path = cache.PathFor(key);
        Assert.Equal(0, Libc.mkfifo(path, 0b110_110_110)); // rw-rw-rw-
        // Opening a FIFO for reading waits for a writer; the entry must be refused from its type, unopened.
        var read = Task.Run(() => KernelCache.TryRead(path, key, "sm_90", out _));
        Assert.True(read.Wait(TimeSpan.FromSeconds(20)), "reading a FIFO entry blocked");
        Assert.False(read.Result);
    }

    /// <summary>
    /// Runs the action so that file permissions apply: directly for an ordinary user; for root, on a thread of its own
    /// whose effective capabilities lack CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (capabilities are per thread on
    /// Linux, so the rest of the process keeps them). Skips the test when that cannot be arranged.
    /// </summary>
    private static void WithoutRootsFileAccessOverride(Action action)
    {
        if (Libc.geteuid() != 0)
        {
            action();
            return;
        }
        Exception? failure = null;
        bool dropped = false;
        var thread = new Thread(() =>
        {
            try
            {
                dropped = Libc.DropFileAccessOverrides();
                if (dropped) action();
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        thread.Join();
        if (failure is not null) throw new Xunit.Sdk.XunitException("On the thread without file access overrides: " + failure);
        Skip.IfNot(dropped, "Could not drop CAP_DAC_OVERRIDE for one thread (capset failed), so root would read any file.");
    }

    private static unsafe class Libc
    {
        [DllImport("libc")] public static extern uint geteuid();
        [DllImport("libc", SetLastError = true)] public static extern int chown(string path, uint owner, uint group);
        [DllImport("libc", SetLastError = true)] public static extern int mkfifo(string path, uint mode);
        [DllImport("libc", SetLastError = true)] private static extern int capget(uint* header, uint* data);
        [DllImport("libc", SetLastError = true)] private static extern int capset(uint* header, uint* data);

        private const uint CapabilityVersion3 = 0x20080522;
        private const int CapDacOverride = 1, CapDacReadSearch = 2;

        /// <summary>Clears the two capabilities from the calling thread's effective set (they stay permitted).</summary>
        public static bool DropFileAccessOverrides()
        {
            uint* header = stackalloc uint[2] { CapabilityVersion3, 0 }; // version, pid 0 = this thread
            uint* data = stackalloc uint[6]; // two {effective, permitted, inheritable} sets: capabilities 0-31, 32-63
            if (capget(header, data) != 0) return false;
            data[0] &= ~((1u << CapDacOverride) | (1u << CapDacReadSearch));
            return capset(header, data) == 0;
        }
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
