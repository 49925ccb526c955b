using AlexNetCompiler.Cuda;
using AlexNetCompiler.Generators.Emitters;
using AlexNetCompiler.Testing;
using Xunit.Abstractions;

namespace AlexNetCompiler.Generators.Tests.Cuda;

/// <summary>
/// Every emitted kernel source compiles with NVRTC for sm_80 and sm_90 (CUBIN, with ptxas resource reports)
/// and for compute_80 (PTX), in FP32 and TF32 mode, without a warning and without register spills.
/// </summary>
public sealed class CudaCompileTests(ITestOutputHelper output)
{
    // The example networks (canonical AlexNet, torchvision's, FashionNet) are compiled from their generated
    // CudaSource in AlexNetCompiler.Tests; here the hand-built canonical AlexNet and OddNet (every unfused
    // path) compile for both architectures, FP32 on sm_80 and TF32 on sm_90. Each compile costs seconds of CPU.
    public static TheoryData<string, string, bool> Targets() => new()
    {
        { "AlexNet2012", "sm_80", false },
        { "AlexNet2012", "sm_90", true },
        { "OddNet", "sm_80", false },
        { "OddNet", "sm_90", true },
    };

    [SkippableTheory]
    [MemberData(nameof(Targets))]
    public void EmittedKernelsCompileCleanlyWithoutSpills(string network, string arch, bool tf32)
    {
        ToolRequirement.Nvrtc();
        var program = CudaEmitter.Build(CudaEmitterTests.Network(network));
        var options = new List<string> { "--std=c++17", "--ptxas-options=-v" };
        if (tf32) options.Add("-DALEXNET_TF32");
        NvrtcOutput result = Nvrtc.Compile(program.Source, network + ".cu", arch, options, CudaPrelude.Headers);

        string[] warnings = result.Log.Split('\n').Where(l => l.Contains("warning", StringComparison.OrdinalIgnoreCase)).ToArray();
        Assert.True(warnings.Length == 0, "NVRTC warnings:\n" + string.Join("\n", warnings));

        var resources = PtxasReport.Parse(result.Log);
        var expected = program.Launches.Select(l => l.Kernel).Append("sgd_update").ToHashSet();
        Assert.Superset(expected, resources.Select(r => r.Kernel).ToHashSet());
        foreach (KernelResources r in resources.OrderByDescending(r => r.Registers))
            output.WriteLine($"{arch}{(tf32 ? " tf32" : "")} {r.Kernel}: {r.Registers} registers, spill {r.SpillStoreBytes}/{r.SpillLoadBytes} B, stack {r.StackFrameBytes} B");
        Assert.All(resources, r =>
        {
            Assert.True(r.SpillStoreBytes == 0 && r.SpillLoadBytes == 0, $"{r.Kernel} spills {r.SpillStoreBytes} B");
            // __launch_bounds__(256) caps registers at 255; more than 128 would halve occupancy of the GEMMs.
            Assert.InRange(r.Registers, 1, 128);
        });
    }

    [SkippableTheory]
    [InlineData("OddNet")]
    [InlineData("AvgPoolNet")]
    public void EmittedKernelsCompileToPtx(string network)
    {
        ToolRequirement.Nvrtc();
        var program = CudaEmitter.Build(CudaEmitterTests.Network(network));
        NvrtcOutput result = Nvrtc.Compile(program.Source, network + ".cu", "compute_80", ["--std=c++17"], CudaPrelude.Headers);
        Assert.DoesNotContain("warning", result.Log, StringComparison.OrdinalIgnoreCase);
        string ptx = System.Text.Encoding.ASCII.GetString(result.Image);
        foreach (string kernel in program.Launches.Select(l => l.Kernel).Distinct())
            Assert.Contains(".entry " + kernel + "(", ptx, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void Tf32ModeUsesTensorCoreInstructions()
    {
        ToolRequirement.Nvrtc();
        var program = CudaEmitter.Build(CudaTestNetworks.OddNet());
        string fp32 = System.Text.Encoding.ASCII.GetString(Nvrtc.Compile(program.Source, "f.cu", "compute_80", ["--std=c++17"], CudaPrelude.Headers).Image);
        string tf32 = System.Text.Encoding.ASCII.GetString(Nvrtc.Compile(program.Source, "t.cu", "compute_80", ["--std=c++17", "-DALEXNET_TF32"], CudaPrelude.Headers).Image);
        Assert.DoesNotContain("mma.sync", fp32, StringComparison.Ordinal);
        Assert.Contains("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32", tf32, StringComparison.Ordinal);
    }
}
