using AlexNetCompiler.Cuda;
using Xunit.Abstractions;

namespace AlexNetCompiler.Tests.Cuda;

/// <summary>
/// NVRTC is required on CI (CI=true): a missing library fails the test there. On a developer machine
/// without NVRTC the test reports why it did nothing, in its output, and returns.
/// </summary>
internal static class NvrtcRequirement
{
    public static bool Check(ITestOutputHelper output)
    {
        if (Nvrtc.IsAvailable(out string? reason)) return true;
        string message = "NVRTC is not available: " + reason +
            " Install it (Debian: libnvrtc11.2 libnvrtc-builtins11.8 from non-free) to run the CUDA compile tests.";
        if (string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
            Assert.Fail(message);
        output.WriteLine("NOT RUN: " + message);
        return false;
    }
}
