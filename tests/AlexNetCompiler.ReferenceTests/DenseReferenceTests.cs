using AlexNetCompiler.Cpu;
using TorchSharp;
using static AlexNetCompiler.ReferenceTests.TorchInterop;
using static TorchSharp.torch;

namespace AlexNetCompiler.ReferenceTests;

/// <summary>DenseKernels reference forward and backward against torch.nn.functional.linear and autograd.</summary>
public sealed class DenseReferenceTests
{
    // Forward: double sum (ours) vs float32 sum (torch) over IN <= 300 terms with O(1/sqrt(IN)) weights:
    // |d| <= 1e-5 + 1e-4*|ref|. Gradients sum over N or OUT terms: |d| <= 1e-4 + 1e-3*|ref|.
    private const double ForwardRelative = 1e-4, ForwardAbsolute = 1e-5;
    private const double GradientRelative = 1e-3, GradientAbsolute = 1e-4;

    [Theory]
    [InlineData(1, 7, 5, true, false)]
    [InlineData(3, 33, 10, true, true)]
    [InlineData(4, 300, 17, false, true)]
    [InlineData(2, 1, 1, true, false)]
    public void ForwardAndBackwardMatchTorch(int batch, int inFeatures, int outFeatures, bool hasBias, bool relu)
    {
        float[] input = RandomArray(batch * inFeatures, 11);
        float[] weight = RandomArray(outFeatures * inFeatures, 12, 1f / MathF.Sqrt(inFeatures));
        float[] bias = hasBias ? RandomArray(outFeatures, 13, 0.5f) : [];
        float[] dOutput = RandomArray(batch * outFeatures, 14);

        using var scope = torch.NewDisposeScope();
        Tensor x = ToLeaf(input, batch, inFeatures);
        Tensor w = ToLeaf(weight, outFeatures, inFeatures);
        Tensor? b = hasBias ? ToLeaf(bias, outFeatures) : null;
        Tensor y = nn.functional.linear(x, w, b);
        if (relu) y = nn.functional.relu(y);
        (y * ToTensor(dOutput, batch, outFeatures)).sum().backward();

        var output = new float[batch * outFeatures];
        DenseKernels.ForwardReference(batch, inFeatures, outFeatures, input, weight, bias, output, relu);
        string name = $"dense {batch}x{inFeatures}->{outFeatures}";
        AssertClose(ToArray(y), output, ForwardRelative, ForwardAbsolute, $"{name}: output");

        float[] masked = (float[])dOutput.Clone();
        if (relu) ReluKernels.BackwardReference(output, masked);
        var dInput = new float[input.Length];
        var dWeight = new float[weight.Length];
        var dBias = new float[bias.Length];
        DenseKernels.BackwardReference(batch, inFeatures, outFeatures, input, weight, masked, dInput, dWeight, dBias);
        AssertClose(ToArray(x.grad!), dInput, GradientRelative, GradientAbsolute, $"{name}: dInput");
        AssertClose(ToArray(w.grad!), dWeight, GradientRelative, GradientAbsolute, $"{name}: dWeight");
        if (hasBias) AssertClose(ToArray(b!.grad!), dBias, GradientRelative, GradientAbsolute, $"{name}: dBias");
    }
}
