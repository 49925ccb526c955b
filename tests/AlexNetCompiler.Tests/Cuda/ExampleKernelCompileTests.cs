using AlexNetCompiler.Cuda;
using AlexNetCompiler.Testing;
using Xunit.Abstractions;

namespace AlexNetCompiler.Tests.Cuda;

/// <summary>
/// The CUDA source the generator emitted for every example network compiles with NVRTC for sm_80 (FP32) and
/// sm_90 (TF32 tensor-core path), for every GEMM tile, with the runner's exact options: no warning, every planned
/// kernel present, no register spills, at most 128 registers. Needs no GPU.
/// </summary>
public sealed class ExampleKernelCompileTests(ITestOutputHelper output)
{
    private static readonly Dictionary<string, (string Source, CudaLaunchPlan Plan)> Examples = new()
    {
        ["AlexNet2012"] = (CanonicalAlexNet.AlexNet2012.CudaSource, CanonicalAlexNet.AlexNet2012.CudaPlan),
        ["TorchvisionAlexNet"] = (TorchvisionAlexNet.TorchvisionAlexNet.CudaSource, TorchvisionAlexNet.TorchvisionAlexNet.CudaPlan),
        ["FashionNet"] = (FashionMnist.FashionNet.CudaSource, FashionMnist.FashionNet.CudaPlan),
        // Not an example: the test network whose adaptive average pools are not the identity.
        ["AvgPoolNet"] = (Networks.AvgPoolNet.CudaSource, Networks.AvgPoolNet.CudaPlan),
        // Nor this one: a dropout before a convolution, the only standalone dropout kernels among the networks here.
        ["UnusualNet"] = (Networks.UnusualNet.CudaSource, Networks.UnusualNet.CudaPlan),
    };

    public static TheoryData<string, string, bool, string> Targets()
    {
        var data = new TheoryData<string, string, bool, string>();
        foreach (string name in Examples.Keys)
        {
            foreach (CudaGemmTile tile in CudaGemmTile.All)
            {
                data.Add(name, "sm_80", false, tile.ToString());
                data.Add(name, "sm_90", true, tile.ToString());
            }
        }
        return data;
    }

    [SkippableTheory]
    [MemberData(nameof(Targets))]
    public void GeneratedKernelsCompileWithoutWarningsOrSpills(string network, string arch, bool tf32, string tile)
    {
        ToolRequirement.Nvrtc();
        (string source, CudaLaunchPlan plan) = Examples[network];
        var options = new List<string> { "--std=c++17", "--ptxas-options=-v" };
        if (tf32) options.Add("-DALEXNET_TF32");
        options.AddRange(CudaGemmTile.Parse(tile).Defines);
        NvrtcOutput result = Nvrtc.Compile(source, network + ".cu", arch, options, CudaPrelude.Headers);

        string[] warnings = result.Log.Split('\n').Where(l => l.Contains("warning", StringComparison.OrdinalIgnoreCase)).ToArray();
        Assert.True(warnings.Length == 0, "NVRTC warnings:\n" + string.Join("\n", warnings));
        var resources = PtxasReport.Parse(result.Log).ToDictionary(r => r.Kernel);
        foreach (string kernel in plan.KernelNames)
            Assert.True(resources.ContainsKey(kernel), $"{network}: planned kernel '{kernel}' is not in the compiled module");
        // Kernels the plan launches must not spill. The default tile must also leave a 256-thread block at most 128
        // registers per thread (two blocks per SM); larger tiles may take more (the autotuner weighs their lower
        // occupancy against their reuse). A data-gradient kernel of the first layer is compiled but never launched.
        var launched = plan.KernelNames.ToHashSet();
        foreach (KernelResources r in resources.Values.OrderByDescending(r => r.Registers))
        {
            output.WriteLine($"{arch}{(tf32 ? " tf32" : "")} {tile} {r.Kernel}: {r.Registers} registers, spills {r.SpillStoreBytes}/{r.SpillLoadBytes} B{(launched.Contains(r.Kernel) ? "" : " (not launched)")}");
            if (!launched.Contains(r.Kernel)) continue;
            Assert.True(r.SpillStoreBytes == 0 && r.SpillLoadBytes == 0, $"{r.Kernel} spills {r.SpillStoreBytes} B");
            Assert.InRange(r.Registers, 1, tile == CudaGemmTile.Default.ToString() ? 128 : 255);
        }
    }

    [Fact]
    public void PlansFitThirtyTwoBitIndexingAtTrainingBatch()
    {
        foreach (var (name, (_, plan)) in Examples)
        {
            foreach (CudaBufferSpec b in plan.Buffers)
                Assert.True(b.Length(128) < int.MaxValue, $"{name}: buffer {b.Name} too large at batch 128");
            Assert.Equal(plan.ParameterCount, plan.Buffers.Single(b => b.Name == CudaLaunchPlan.Parameters).FixedLength);
        }
        Assert.Equal(CanonicalAlexNet.AlexNet2012.ParameterCount, CanonicalAlexNet.AlexNet2012.CudaPlan.ParameterCount);
        Assert.Equal(CanonicalAlexNet.AlexNet2012.ClassCount, CanonicalAlexNet.AlexNet2012.CudaPlan.ClassCount);
    }
}
