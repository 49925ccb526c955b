using AlexNetCompiler.Cpu;
using TorchSharp;
using static TorchSharp.torch;

namespace AlexNetCompiler.ReferenceTests;

/// <summary>
/// A small AlexNet-shaped network described by hand (conv, ReLU, max pool, grouped conv, ReLU, dropout,
/// dense), in our descriptor form with torchvision-style state-dict names, as a TorchSharp module with the
/// same names, and as a forward pass over our reference kernels.
/// </summary>
internal static class TinyNetwork
{
    public static readonly Conv2dGeometry Conv1 = new(3, 8, 8, 4, 8, 8, 3, 3, 1, 1, 1, 1, 1);
    public static readonly PoolGeometry Pool1 = new(4, 8, 8, 4, 4, 2, 2, 2, 2, 0, 0);
    public static readonly Conv2dGeometry Conv2 = new(4, 4, 4, 6, 4, 4, 3, 3, 1, 1, 1, 1, 2);
    public const int Features = 6 * 4 * 4, Classes = 5;

    public static NetworkDescriptor Descriptor { get; } = Build();

    private static NetworkDescriptor Build()
    {
        var parameters = new List<ParameterDescriptor>();
        int offset = 0;
        void Add(string name, int[] shape, ParameterRole role, int fanIn)
        {
            int length = shape.Aggregate(1, (a, b) => a * b);
            parameters.Add(new ParameterDescriptor(name, shape, offset, length, role, fanIn, role == ParameterRole.Bias ? 1f : 0f));
            offset += length;
        }
        Add("features.0.weight", [4, 3, 3, 3], ParameterRole.Weight, 27);
        Add("features.0.bias", [4], ParameterRole.Bias, 27);
        Add("features.3.weight", [6, 2, 3, 3], ParameterRole.Weight, 18);
        Add("features.3.bias", [6], ParameterRole.Bias, 18);
        Add("classifier.1.weight", [Classes, Features], ParameterRole.Weight, Features);
        Add("classifier.1.bias", [Classes], ParameterRole.Bias, Features);
        var layers = new List<LayerDescriptor>
        {
            new(0, "features.0", "Conv1", LayerKind.Conv2d, [3, 8, 8], [4, 8, 8], 112, "k=3 s=1 p=1 g=1",
                new Conv2dHyperparameters(3, 3, 1, 1, 1, 1, 1, Bias: true)),
            new(1, "features.1", "Relu1", LayerKind.Relu, [4, 8, 8], [4, 8, 8], 0, "", null),
            new(2, "features.2", "Pool1", LayerKind.MaxPool, [4, 8, 8], [4, 4, 4], 0, "k=2 s=2", new MaxPoolHyperparameters(2, 2, 2, 2, 0, 0)),
            new(3, "features.3", "Conv2", LayerKind.Conv2d, [4, 4, 4], [6, 4, 4], 114, "k=3 s=1 p=1 g=2",
                new Conv2dHyperparameters(3, 3, 1, 1, 1, 1, 2, Bias: true)),
            new(4, "features.4", "Relu2", LayerKind.Relu, [6, 4, 4], [6, 4, 4], 0, "", null),
            new(5, "classifier.0", "Dropout1", LayerKind.Dropout, [6, 4, 4], [96], 0, "p=0.5", new DropoutHyperparameters(0.5f)),
            new(6, "classifier.1", "Dense1", LayerKind.Dense, [96], [Classes], Classes * Features + Classes, "", new DenseHyperparameters(Bias: true)),
        };
        return new NetworkDescriptor("TinyNet", 3, 8, 8, Classes, offset, layers, parameters, new MemoryPlan(offset * 4L, 0, 0, 0, 0, 0));
    }

    public static nn.Module<Tensor, Tensor> CreateTorchModule() => nn.Sequential(
        ("features", nn.Sequential(
            ("0", nn.Conv2d(3, 4, 3, padding: 1)),
            ("1", nn.ReLU()),
            ("2", nn.MaxPool2d(2, 2)),
            ("3", nn.Conv2d(4, 6, 3, padding: 1, groups: 2)),
            ("4", nn.ReLU()))),
        ("flatten", nn.Flatten()),
        ("classifier", nn.Sequential(
            ("0", nn.Dropout(0.5)),
            ("1", nn.Linear(Features, Classes)))));

    /// <summary>Inference over our reference kernels; returns logits [batch, classes].</summary>
    public static float[] Forward(ReadOnlySpan<float> parameters, float[] input, int batch)
    {
        ParameterDescriptor P(int i) => Descriptor.Parameters[i];
        ReadOnlySpan<float> Slice(ReadOnlySpan<float> all, int i) => all.Slice(P(i).Offset, P(i).Length);
        var conv1 = new float[batch * Conv1.OutputLength];
        Conv2dKernels.ForwardReference(Conv1, batch, input, Slice(parameters, 0), Slice(parameters, 1), conv1, relu: true);
        var pool1 = new float[batch * Pool1.OutputLength];
        MaxPoolKernels.ForwardReference(Pool1, batch, conv1, pool1, Span<int>.Empty);
        var conv2 = new float[batch * Conv2.OutputLength];
        Conv2dKernels.ForwardReference(Conv2, batch, pool1, Slice(parameters, 2), Slice(parameters, 3), conv2, relu: true);
        var logits = new float[batch * Classes];
        DenseKernels.ForwardReference(batch, Features, Classes, conv2, Slice(parameters, 4), Slice(parameters, 5), logits, relu: false);
        return logits;
    }
}
