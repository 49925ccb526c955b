using System.Collections.Immutable;
using AlexNetCompiler.Generators.Model;

namespace AlexNetCompiler.Generators.Tests.Cuda;

using LayerKind = AlexNetCompiler.Generators.Model.LayerKind;
using ParameterRole = AlexNetCompiler.Generators.Model.ParameterRole;

/// <summary>
/// NetworkModel instances built by hand (shape arithmetic as in PyTorch: out = (in + 2p - k) / s + 1, floor),
/// so the CUDA emitter can be tested independently of the parser.
/// </summary>
internal static class CudaTestNetworks
{
    internal abstract record L;
    internal sealed record Conv(int Out, int K, int S = 1, int P = 0, int G = 1, bool Bias = true) : L;
    internal sealed record Relu : L;
    internal sealed record Lrn(int Size = 5, float Alpha = 1e-4f, float Beta = 0.75f, float K = 2f) : L;
    internal sealed record Pool(int K, int S, int P = 0) : L;
    internal sealed record Drop(float P) : L;
    internal sealed record Fc(int Out, bool Bias = true) : L;

    /// <param name="fuseRelu">Mark conv/dense layers followed by ReLU as FusedRelu (the ReLU layer stays in the list).</param>
    public static NetworkModel Build(string name, TensorShape input, bool fuseRelu, params L[] spec)
    {
        var layers = ImmutableArray.CreateBuilder<LayerModel>();
        TensorShape shape = input;
        int offset = 0, featureIndex = 0, classifierIndex = 0, count = 0;
        bool inClassifier = false;
        int lastSpatial = Array.FindLastIndex(spec, l => l is Conv or Lrn or Pool);
        var counters = new Dictionary<string, int>();
        for (int i = 0; i < spec.Length; i++)
        {
            L l = spec[i];
            if (i > lastSpatial && l is Drop or Fc) inClassifier = true;
            string stateName = inClassifier ? $"classifier.{classifierIndex++}" : $"features.{featureIndex++}";
            string kindName = l switch { Conv => "Conv", Relu => "Relu", Lrn => "Lrn", Pool => "MaxPool", Drop => "Dropout", _ => "Dense" };
            counters[kindName] = counters.TryGetValue(kindName, out int c) ? c + 1 : 1;
            string identifier = kindName + counters[kindName];
            bool reluNext = fuseRelu && i + 1 < spec.Length && spec[i + 1] is Relu;
            var parameters = ImmutableArray.CreateBuilder<ParameterModel>();
            TensorShape output;
            LayerModel layer;
            switch (l)
            {
                case Conv cv:
                {
                    int oh = (shape.Height + 2 * cv.P - cv.K) / cv.S + 1, ow = (shape.Width + 2 * cv.P - cv.K) / cv.S + 1;
                    output = new TensorShape(cv.Out, oh, ow);
                    int fanIn = shape.Channels / cv.G * cv.K * cv.K;
                    parameters.Add(new ParameterModel(stateName + ".weight", identifier + "Weight", new[] { cv.Out, shape.Channels / cv.G, cv.K, cv.K }.ToEquatableArray(),
                        offset, cv.Out * fanIn, ParameterRole.Weight, fanIn, 0f));
                    offset += cv.Out * fanIn;
                    if (cv.Bias)
                    {
                        parameters.Add(new ParameterModel(stateName + ".bias", identifier + "Bias", new[] { cv.Out }.ToEquatableArray(), offset, cv.Out, ParameterRole.Bias, fanIn, 0f));
                        offset += cv.Out;
                    }
                    layer = new LayerModel(LayerKind.Conv2d, count, stateName, identifier, shape, output, cv.K, cv.K, cv.S, cv.S, cv.P, cv.P, cv.G, cv.Bias,
                        0, 0, 0, 0, 0, reluNext, parameters.ToImmutable().ToEquatableArray());
                    break;
                }
                case Fc fc:
                {
                    output = new TensorShape(fc.Out, 1, 1);
                    int fanIn = shape.Length;
                    parameters.Add(new ParameterModel(stateName + ".weight", identifier + "Weight", new[] { fc.Out, fanIn }.ToEquatableArray(), offset, fc.Out * fanIn, ParameterRole.Weight, fanIn, 0f));
                    offset += fc.Out * fanIn;
                    if (fc.Bias)
                    {
                        parameters.Add(new ParameterModel(stateName + ".bias", identifier + "Bias", new[] { fc.Out }.ToEquatableArray(), offset, fc.Out, ParameterRole.Bias, fanIn, 0f));
                        offset += fc.Out;
                    }
                    layer = new LayerModel(LayerKind.Dense, count, stateName, identifier, shape, output, 0, 0, 0, 0, 0, 0, 1, fc.Bias,
                        0, 0, 0, 0, 0, reluNext, parameters.ToImmutable().ToEquatableArray());
                    break;
                }
                case Pool p:
                {
                    output = new TensorShape(shape.Channels, (shape.Height + 2 * p.P - p.K) / p.S + 1, (shape.Width + 2 * p.P - p.K) / p.S + 1);
                    layer = new LayerModel(LayerKind.MaxPool, count, stateName, identifier, shape, output, p.K, p.K, p.S, p.S, p.P, p.P, 1, false,
                        0, 0, 0, 0, 0, false, EquatableArray<ParameterModel>.Empty);
                    break;
                }
                case Lrn n:
                    output = shape;
                    layer = new LayerModel(LayerKind.Lrn, count, stateName, identifier, shape, output, 0, 0, 0, 0, 0, 0, 1, false,
                        n.Size, n.Alpha, n.Beta, n.K, 0, false, EquatableArray<ParameterModel>.Empty);
                    break;
                case Drop d:
                    output = shape;
                    layer = new LayerModel(LayerKind.Dropout, count, stateName, identifier, shape, output, 0, 0, 0, 0, 0, 0, 1, false,
                        0, 0, 0, 0, d.P, false, EquatableArray<ParameterModel>.Empty);
                    break;
                default:
                    output = shape;
                    layer = new LayerModel(LayerKind.Relu, count, stateName, identifier, shape, output, 0, 0, 0, 0, 0, 0, 1, false,
                        0, 0, 0, 0, 0, false, EquatableArray<ParameterModel>.Empty);
                    break;
            }
            layers.Add(layer);
            shape = output;
            count++;
        }
        var memory = new MemoryPlanModel(offset * 4L, offset * 8L, 0, 0, 0, 0);
        return new NetworkModel("Tests", name, "public", EquatableArray<ContainingTypeModel>.Empty, input, shape.Channels, offset,
            layers.ToImmutable().ToEquatableArray(), memory);
    }

    /// <summary>Krizhevsky et al. 2012, one tower with groups = 2: 60,965,224 parameters.</summary>
    public static NetworkModel CanonicalAlexNet(bool fuseRelu = true) => Build("AlexNet2012", new TensorShape(3, 227, 227), fuseRelu,
        new Conv(96, 11, 4), new Relu(), new Lrn(), new Pool(3, 2),
        new Conv(256, 5, 1, 2, 2), new Relu(), new Lrn(), new Pool(3, 2),
        new Conv(384, 3, 1, 1), new Relu(),
        new Conv(384, 3, 1, 1, 2), new Relu(),
        new Conv(256, 3, 1, 1, 2), new Relu(), new Pool(3, 2),
        new Drop(0.5f), new Fc(4096), new Relu(),
        new Drop(0.5f), new Fc(4096), new Relu(),
        new Fc(1000));

    /// <summary>torchvision's AlexNet: 61,100,840 parameters.</summary>
    public static NetworkModel TorchvisionAlexNet() => Build("TorchvisionAlexNet", new TensorShape(3, 224, 224), true,
        new Conv(64, 11, 4, 2), new Relu(), new Pool(3, 2),
        new Conv(192, 5, 1, 2), new Relu(), new Pool(3, 2),
        new Conv(384, 3, 1, 1), new Relu(),
        new Conv(256, 3, 1, 1), new Relu(),
        new Conv(256, 3, 1, 1), new Relu(), new Pool(3, 2),
        new Drop(0.5f), new Fc(4096), new Relu(),
        new Drop(0.5f), new Fc(4096), new Relu(),
        new Fc(1000));

    /// <summary>The Fashion-MNIST example network (28x28 grey, padded pools).</summary>
    public static NetworkModel FashionNet() => Build("FashionNet", new TensorShape(1, 28, 28), true,
        new Conv(32, 3, 1, 1), new Relu(), new Lrn(), new Pool(3, 2, 1),
        new Conv(64, 3, 1, 1), new Relu(), new Lrn(), new Pool(3, 2, 1),
        new Conv(128, 3, 1, 1), new Relu(),
        new Conv(128, 3, 1, 1, 2), new Relu(),
        new Conv(64, 3, 1, 1, 2), new Relu(), new Pool(3, 2),
        new Drop(0.5f), new Fc(512), new Relu(),
        new Drop(0.5f), new Fc(256), new Relu(),
        new Fc(10));

    /// <summary>Every unfused path: ReLU after a pool, LRN without a pool (even size), a pool without LRN,
    /// bias-free conv and dense, dropout not followed by a dense layer, a dense layer without ReLU.</summary>
    public static NetworkModel OddNet() => Build("OddNet", new TensorShape(2, 13, 11), false,
        new Conv(6, 3, 2, 1, 2, Bias: false), new Pool(2, 2), new Relu(), new Lrn(4, 1e-3f, 0.5f, 1f),
        new Drop(0.25f), new Conv(8, 1), new Relu(),
        new Fc(7, Bias: false), new Drop(0.3f), new Fc(5), new Relu(), new Drop(0.1f));

    public static IEnumerable<(string Name, NetworkModel Model)> All() =>
    [
        ("AlexNet2012", CanonicalAlexNet()),
        ("TorchvisionAlexNet", TorchvisionAlexNet()),
        ("FashionNet", FashionNet()),
        ("OddNet", OddNet()),
    ];
}
