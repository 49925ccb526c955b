using AlexNetCompiler.Cuda;

namespace AlexNetCompiler.Tests.Cuda;

public sealed class PtxasReportTests
{
    [Fact]
    public void ParsesRegistersAndSpillsPerKernel()
    {
        // The shape of NVRTC 11.8's log with --ptxas-options=-v.
        const string log = """
            ptxas info    : 0 bytes gmem
            ptxas info    : Compiling entry function 'conv1_forward' for 'sm_90'
            ptxas info    : Function properties for conv1_forward
            ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
            ptxas info    : Used 72 registers, 18432 bytes smem, 400 bytes cmem[0]
            ptxas info    : Compiling entry function 'dense1_forward' for 'sm_90'
            ptxas info    : Function properties for dense1_forward
            ptxas         .     16 bytes stack frame, 8 bytes spill stores, 12 bytes spill loads
            ptxas info    : Used 255 registers
            """;
        var report = PtxasReport.Parse(log);
        Assert.Equal(2, report.Count);
        Assert.Equal(new KernelResources("conv1_forward", 72, 0, 0, 0), report[0]);
        Assert.Equal(new KernelResources("dense1_forward", 255, 8, 12, 16), report[1]);
    }

    [Fact]
    public void LogWithoutPtxasLinesGivesNothing() => Assert.Empty(PtxasReport.Parse("t.cu(1): warning #177-D: variable declared but never referenced"));
}
