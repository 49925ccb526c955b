using TorchSharp;
using static TorchSharp.torch;

namespace AlexNetCompiler.Bench;

/// <summary>
/// The benchmark networks as TorchSharp modules with torchvision's state-dict names ("features.{i}",
/// "classifier.{j}"), so the project's parameters can be copied in by name.
/// </summary>
internal static class TorchModels
{
    /// <summary>
    /// Krizhevsky et al. 2012 as one tower. Our LRN alpha is the paper's (applied to the plain window sum);
    /// torch's LocalResponseNorm divides by size, so it gets alpha * size.
    /// </summary>
    public static nn.Module<Tensor, Tensor> Canonical()
    {
        const double alpha = 1e-4, beta = 0.75, k = 2.0;
        const int size = 5;
        return nn.Sequential(
            ("features", nn.Sequential(
                ("0", nn.Conv2d(3, 96, 11, stride: 4)),
                ("1", nn.ReLU()),
                ("2", nn.LocalResponseNorm(size, alpha * size, beta, k)),
                ("3", nn.MaxPool2d(3, 2)),
                ("4", nn.Conv2d(96, 256, 5, padding: 2, groups: 2)),
                ("5", nn.ReLU()),
                ("6", nn.LocalResponseNorm(size, alpha * size, beta, k)),
                ("7", nn.MaxPool2d(3, 2)),
                ("8", nn.Conv2d(256, 384, 3, padding: 1)),
                ("9", nn.ReLU()),
                ("10", nn.Conv2d(384, 384, 3, padding: 1, groups: 2)),
                ("11", nn.ReLU()),
                ("12", nn.Conv2d(384, 256, 3, padding: 1, groups: 2)),
                ("13", nn.ReLU()),
                ("14", nn.MaxPool2d(3, 2)))),
            ("flatten", nn.Flatten()),
            ("classifier", Classifier()));
    }

    /// <summary>torchvision.models.alexnet at 224x224 (its AdaptiveAvgPool2d((6, 6)) is the identity there).</summary>
    public static nn.Module<Tensor, Tensor> Torchvision() => nn.Sequential(
        ("features", nn.Sequential(
            ("0", nn.Conv2d(3, 64, 11, stride: 4, padding: 2)),
            ("1", nn.ReLU()),
            ("2", nn.MaxPool2d(3, 2)),
            ("3", nn.Conv2d(64, 192, 5, padding: 2)),
            ("4", nn.ReLU()),
            ("5", nn.MaxPool2d(3, 2)),
            ("6", nn.Conv2d(192, 384, 3, padding: 1)),
            ("7", nn.ReLU()),
            ("8", nn.Conv2d(384, 256, 3, padding: 1)),
            ("9", nn.ReLU()),
            ("10", nn.Conv2d(256, 256, 3, padding: 1)),
            ("11", nn.ReLU()),
            ("12", nn.MaxPool2d(3, 2)))),
        ("flatten", nn.Flatten()),
        ("classifier", Classifier()));

    /// <summary>examples/FashionMnist/FashionNet.cs (LRN alpha as in <see cref="Canonical"/>).</summary>
    public static nn.Module<Tensor, Tensor> Fashion()
    {
        const double alpha = 1e-4, beta = 0.75, k = 2.0;
        const int size = 5;
        return nn.Sequential(
            ("features", nn.Sequential(
                ("0", nn.Conv2d(1, 32, 3, padding: 1)),
                ("1", nn.ReLU()),
                ("2", nn.LocalResponseNorm(size, alpha * size, beta, k)),
                ("3", nn.MaxPool2d(3, 2, 1)),
                ("4", nn.Conv2d(32, 64, 3, padding: 1)),
                ("5", nn.ReLU()),
                ("6", nn.LocalResponseNorm(size, alpha * size, beta, k)),
                ("7", nn.MaxPool2d(3, 2, 1)),
                ("8", nn.Conv2d(64, 128, 3, padding: 1)),
                ("9", nn.ReLU()),
                ("10", nn.Conv2d(128, 128, 3, padding: 1, groups: 2)),
                ("11", nn.ReLU()),
                ("12", nn.Conv2d(128, 64, 3, padding: 1, groups: 2)),
                ("13", nn.ReLU()),
                ("14", nn.MaxPool2d(3, 2)))),
            ("flatten", nn.Flatten()),
            ("classifier", nn.Sequential(
                ("0", nn.Dropout(0.5)),
                ("1", nn.Linear(64 * 3 * 3, 512)),
                ("2", nn.ReLU()),
                ("3", nn.Dropout(0.5)),
                ("4", nn.Linear(512, 256)),
                ("5", nn.ReLU()),
                ("6", nn.Linear(256, 10)))));
    }

    private static nn.Module<Tensor, Tensor> Classifier() => nn.Sequential(
        ("0", nn.Dropout(0.5)),
        ("1", nn.Linear(9216, 4096)),
        ("2", nn.ReLU()),
        ("3", nn.Dropout(0.5)),
        ("4", nn.Linear(4096, 4096)),
        ("5", nn.ReLU()),
        ("6", nn.Linear(4096, 1000)));

    /// <summary>Copies every parameter of <paramref name="network"/> into the module by state-dict name, checking shapes.</summary>
    public static void LoadParameters(nn.Module module, NetworkDescriptor network, float[] parameters)
    {
        var byName = module.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        if (byName.Count != network.Parameters.Count)
            throw new InvalidOperationException($"{network.Name}: the TorchSharp module has {byName.Count} parameter tensors, the network {network.Parameters.Count}.");
        using var _ = torch.no_grad();
        foreach (ParameterDescriptor p in network.Parameters)
        {
            if (!byName.TryGetValue(p.Name, out var target))
                throw new InvalidOperationException($"{network.Name}: parameter '{p.Name}' has no counterpart in the TorchSharp module.");
            long[] shape = p.Shape.Select(x => (long)x).ToArray();
            if (!target.shape.SequenceEqual(shape))
                throw new InvalidOperationException($"{network.Name}: parameter '{p.Name}' is [{string.Join(", ", shape)}] here but [{string.Join(", ", target.shape)}] in TorchSharp.");
            using Tensor source = torch.tensor(parameters.AsSpan(p.Offset, p.Length).ToArray(), shape);
            target.copy_(source);
        }
    }
}
