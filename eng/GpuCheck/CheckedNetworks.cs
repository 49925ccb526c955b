using AlexNetCompiler;
using AlexNetCompiler.Cuda;
using AlexNetCompiler.Training;
using AlexNetCompiler.Tests.Networks;
using CanonicalAlexNet;
using FashionMnist;

namespace GpuCheck;

/// <summary>A generated network with what the check needs of it: the CPU network, its model, and its CUDA plan and source.</summary>
/// <param name="Key">The name in options, results and file names ("alexnet").</param>
/// <param name="Timed">Timed at batch 128 (and beside PyTorch); the others are checked for correctness only.</param>
internal sealed record CheckedNetwork(
    string Key, Func<int, INetwork> Create, NetworkDescriptor Model, CudaLaunchPlan Plan, string Source, InitScheme Init,
    int DefaultCheckBatch, bool Timed);

/// <summary>The networks of the check, and the modules the main job loads on a GPU.</summary>
internal static class CheckedNetworks
{
    /// <summary>In the order they are checked: the canonical AlexNet, the main job's FashionNet, then the unfused paths.</summary>
    public static IReadOnlyList<CheckedNetwork> All { get; } =
    [
        new("alexnet", batch => new AlexNet2012(batch), AlexNet2012.Model, AlexNet2012.CudaPlan, AlexNet2012.CudaSource, InitScheme.He, DefaultCheckBatch: 16, Timed: true),
        new("fashionnet", batch => new FashionNet(batch), FashionNet.Model, FashionNet.CudaPlan, FashionNet.CudaSource, InitScheme.He, DefaultCheckBatch: 64, Timed: true),
        // The runtime tests' network of uncommon paths: its plan has the unfused kernels; its speed says nothing.
        new("unusual", batch => new UnusualNet(batch), UnusualNet.Model, UnusualNet.CudaPlan, UnusualNet.CudaSource, InitScheme.He, DefaultCheckBatch: 8, Timed: false),
        // Non-square pools, one fused with an LRN: each axis has its own kernel and stride in the CUDA template.
        new("rectangular", batch => new RectangularPoolNet(batch), RectangularPoolNet.Model, RectangularPoolNet.CudaPlan, RectangularPoolNet.CudaSource, InitScheme.He,
            DefaultCheckBatch: 8, Timed: false),
        // Adaptive average pools that shrink (overlapping bins) and grow, and one that is the identity.
        new("avgpool", batch => new AvgPoolNet(batch), AvgPoolNet.Model, AvgPoolNet.CudaPlan, AvgPoolNet.CudaSource, InitScheme.He,
            DefaultCheckBatch: 8, Timed: false),
    ];

    public static IReadOnlyList<string> Keys { get; } = [.. All.Select(n => n.Key)];

    /// <summary>
    /// What `alexnet-fashion train --device cuda` compiles (FP32, every GEMM tile, as its runner asks by default), per
    /// network it can train. The check's own FashionNet modules are the same ones: one generated source, one key.
    /// </summary>
    public static IReadOnlyList<(string Name, CudaLaunchPlan Plan, string Source)> MainJob { get; } =
    [
        ("FashionNet", FashionNet.CudaPlan, FashionNet.CudaSource),
        ("AlexNetFashion", AlexNetFashion.CudaPlan, AlexNetFashion.CudaSource),
    ];
}
