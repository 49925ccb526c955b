namespace AlexNetCompiler.Tests;

/// <summary>Hand-written network descriptors for tests that need only the parameter table.</summary>
internal static class TestNetworks
{
    /// <summary>A conv (paper bias 0), a grouped conv (paper bias 1), a hidden dense (bias 1) and an output dense (bias 0).</summary>
    public static NetworkDescriptor Small { get; } = Create("SmallNet",
        ("features.0.weight", [8, 3, 5, 5], ParameterRole.Weight, 75, 0f),
        ("features.0.bias", [8], ParameterRole.Bias, 75, 0f),
        ("features.3.weight", [16, 4, 3, 3], ParameterRole.Weight, 36, 1f),
        ("features.3.bias", [16], ParameterRole.Bias, 36, 1f),
        ("classifier.1.weight", [300, 256], ParameterRole.Weight, 256, 1f),
        ("classifier.1.bias", [300], ParameterRole.Bias, 256, 1f),
        ("classifier.3.weight", [10, 300], ParameterRole.Weight, 300, 0f),
        ("classifier.3.bias", [10], ParameterRole.Bias, 300, 0f));

    public static NetworkDescriptor Create(string name, params (string Name, int[] Shape, ParameterRole Role, int FanIn, float PaperBias)[] tensors)
    {
        var parameters = new List<ParameterDescriptor>();
        int offset = 0;
        foreach (var t in tensors)
        {
            int length = t.Shape.Aggregate(1, (a, b) => a * b);
            parameters.Add(new ParameterDescriptor(t.Name, t.Shape, offset, length, t.Role, t.FanIn, t.PaperBias));
            offset += length;
        }
        return new NetworkDescriptor(name, 3, 8, 8, 10, offset, [], parameters, new MemoryPlan(offset * 4L, offset * 8L, 0, 0, 0, 0));
    }
}
