using AlexNetCompiler.Tests.Cuda.Emulation;

namespace AlexNetCompiler.Tests;

/// <summary>
/// The test assembly run as a program (<c>dotnet AlexNetCompiler.Tests.dll ...</c>), for tests that need a process of
/// their own: a process loads the CUDA driver library once, so a test that runs the runtime on the CUDA emulator
/// starts this program with the emulator named as the driver. The test runner never calls it.
/// </summary>
internal static class Program
{
    public static int Main(string[] args)
    {
        if (args is [CudaNetworkScenarios.Command, string scenario]) return CudaNetworkScenarios.Run(scenario);
        if (args is [NcclScenarios.Command, string ncclScenario]) return NcclScenarios.Run(ncclScenario);
        Console.Error.WriteLine($"usage: {CudaNetworkScenarios.Command} <scenario>, or {NcclScenarios.Command} <scenario>");
        return 2;
    }
}
