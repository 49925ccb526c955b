namespace AlexNetCompiler.Testing;

/// <summary>
/// Tools some tests need that the build does not bring: NVRTC, and g++ for the CUDA emulator. CI (CI=true) installs
/// them, so there a missing tool fails the test; on a developer machine the test is reported as skipped, with the
/// reason and how to install the tool. The skip is an exception that only [SkippableFact] and [SkippableTheory]
/// report as skipped: a test that calls these must carry one of them, else the skip counts as a failure.
/// </summary>
internal static class ToolRequirement
{
    /// <summary>NVRTC, which compiles the generated CUDA sources (no GPU is needed for that).</summary>
    public static void Nvrtc()
    {
        bool available = AlexNetCompiler.Cuda.Nvrtc.IsAvailable(out string? reason);
        Require(available, "NVRTC is not available: " + reason +
            " Install it (Debian: libnvrtc11.2 libnvrtc-builtins11.8 from non-free) to run the CUDA compile tests.");
    }

    /// <summary>Open MPI's mpirun and libmpi.so.40, for the data-parallel tests with real processes.</summary>
    public static void OpenMpi()
    {
        bool mpirun = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Any(folder => File.Exists(Path.Combine(folder, "mpirun")));
        bool library = System.Runtime.InteropServices.NativeLibrary.TryLoad("libmpi.so.40", out _);
        Require(mpirun && library, $"Open MPI is not installed ({(mpirun ? "" : "no mpirun on PATH; ")}{(library ? "" : "libmpi.so.40 not found")})." +
            " Install it (Debian: openmpi-bin) to run the data-parallel tests.");
    }

    /// <summary>Fails the test on CI, skips it elsewhere, when the tool is missing.</summary>
    public static void Require(bool available, string missing)
    {
        if (available) return;
        if (string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
            Assert.Fail(missing);
        throw new SkipException(missing);
    }
}
