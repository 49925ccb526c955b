using AlexNetCompiler.Generators.Model;
using AlexNetCompiler.Generators.Tests.Infrastructure;

namespace AlexNetCompiler.Generators.Tests.Cuda;

/// <summary>
/// The networks the CUDA emitter is tested on, each a NetworkModel from the real generator pipeline (parser and
/// shape inference): the examples' own spec files, and one spec of the unfused paths. So every name, shape and
/// fusion flag here is what the generator gives a user, and a snapshot of the emitted source is what ships.
/// </summary>
internal static class CudaTestNetworks
{
    private static readonly Lazy<NetworkModel> s_canonical = new(() => Example.Canonical.Run().SingleModel);
    private static readonly Lazy<NetworkModel> s_torchvision = new(() => Example.Torchvision.Run().SingleModel);
    private static readonly Lazy<NetworkModel> s_fashion = new(() => Example.Fashion.Run().SingleModel);
    private static readonly Lazy<NetworkModel> s_odd = new(() => GeneratorHarness.Run(OddNetSpec).SingleModel);
    private static readonly Lazy<NetworkModel> s_avgPool = new(() => GeneratorHarness.Run(AvgPoolNetSpec).SingleModel);

    /// <summary>Krizhevsky et al. 2012, one tower with groups = 2: 60,965,224 parameters (examples/CanonicalAlexNet).</summary>
    public static NetworkModel CanonicalAlexNet() => s_canonical.Value;

    /// <summary>torchvision's AlexNet: 61,100,840 parameters (examples/TorchvisionAlexNet).</summary>
    public static NetworkModel TorchvisionAlexNet() => s_torchvision.Value;

    /// <summary>The Fashion-MNIST example network (28x28 grey, padded pools).</summary>
    public static NetworkModel FashionNet() => s_fashion.Value;

    /// <summary>
    /// Every unfused path: ReLU after a pool, LRN without a pool, a pool without LRN, bias-free conv and dense,
    /// dropout before a conv (a kernel of its own), a dense layer without ReLU.
    /// </summary>
    public static NetworkModel OddNet() => s_odd.Value;

    private const string OddNetSpec = """
        using AlexNetCompiler;
        namespace Tests;

        [Network(Channels = 2, Height = 13, Width = 11)]
        [Conv2d(6, Kernel = 3, Stride = 2, Padding = 1, Groups = 2, Bias = false), MaxPool(2, Stride = 2), Relu, Lrn(Size = 3, Alpha = 1e-3f, Beta = 0.5f, K = 1f)]
        [Dropout(0.25f), Conv2d(8, Kernel = 1), Relu]
        [Dense(7, Bias = false), Dropout(0.3f), Dense(5), Relu, Dropout(0.1f), Dense(4)]
        public partial class OddNet { }
        """;

    /// <summary>
    /// Adaptive average pools: one shrinking 9x8 to 4x3 (overlapping bins), one growing 4x3 to 5x6, one the identity
    /// (the same spec as the runtime tests' AvgPoolNet, which runs on the emulator).
    /// </summary>
    public static NetworkModel AvgPoolNet() => s_avgPool.Value;

    private const string AvgPoolNetSpec = """
        using AlexNetCompiler;
        namespace Tests;

        [Network(Channels = 3, Height = 19, Width = 17)]
        [Conv2d(6, Kernel = 3, Stride = 2), Relu, AdaptiveAvgPool(4, OutputWidth = 3)]
        [Conv2d(8, Kernel = 1), AdaptiveAvgPool(5, OutputWidth = 6), Relu, AdaptiveAvgPool(5, OutputWidth = 6)]
        [Dense(6)]
        public partial class AvgPoolNet { }
        """;

    public static IEnumerable<(string Name, NetworkModel Model)> All() =>
    [
        ("AlexNet2012", CanonicalAlexNet()),
        ("TorchvisionAlexNet", TorchvisionAlexNet()),
        ("FashionNet", FashionNet()),
        ("OddNet", OddNet()),
        ("AvgPoolNet", AvgPoolNet()),
    ];
}
