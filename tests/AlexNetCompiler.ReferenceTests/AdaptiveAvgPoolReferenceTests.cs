using AlexNetCompiler.Cpu;
using TorchSharp;
using static AlexNetCompiler.ReferenceTests.TorchInterop;
using static TorchSharp.torch;

namespace AlexNetCompiler.ReferenceTests;

/// <summary>AdaptiveAvgPoolKernels reference against torch.nn.functional.adaptive_avg_pool2d.</summary>
public sealed class AdaptiveAvgPoolReferenceTests
{
    // Each output is a sum of at most a few dozen float32 terms divided by their count; the two sides may sum in
    // another order or divide in two steps, so values agree to a few ulp: relative 1e-6 plus absolute 1e-7 (inputs and
    // gradients are of order 1). A wrong bin moves an output by order 1/(window size), far above that.
    private const double Relative = 1e-6, Absolute = 1e-7;

    [Theory]
    // N, C, H, W, OH, OW
    [InlineData(2, 3, 7, 7, 6, 6)]     // torchvision AlexNet at 256x256: 7 -> 6, neighbouring bins overlap
    [InlineData(1, 2, 13, 13, 6, 6)]   // 13 -> 6: bins of 3 and 4 rows
    [InlineData(2, 2, 6, 6, 6, 6)]     // the identity (torchvision at 224)
    [InlineData(1, 3, 12, 12, 6, 6)]   // divides: plain 2x2 average pool
    [InlineData(2, 2, 3, 5, 6, 4)]     // larger than the input along one axis: bins repeat rows
    [InlineData(1, 1, 1, 1, 6, 6)]     // a single pixel spread over every output
    [InlineData(1, 2, 10, 3, 4, 7)]    // rectangular, each axis its own case
    public void ForwardAndBackwardMatchTorch(int n, int c, int h, int w, int oh, int ow)
    {
        var g = new AdaptiveAvgPoolGeometry(c, h, w, oh, ow);
        float[] input = RandomArray(n * g.InputLength, 41);
        float[] dOutput = RandomArray(n * g.OutputLength, 42);

        using var dispose = torch.NewDisposeScope();
        Tensor x = ToLeaf(input, n, c, h, w);
        Tensor y = nn.functional.adaptive_avg_pool2d(x, [oh, ow]);
        (y * ToTensor(dOutput, n, c, oh, ow)).sum().backward();

        var output = new float[n * g.OutputLength];
        AdaptiveAvgPoolKernels.ForwardReference(g, n, input, output);
        AssertClose(ToArray(y), output, Relative, Absolute, $"adaptive avg pool {h}x{w} -> {oh}x{ow} forward");

        var dInput = new float[input.Length];
        dInput.AsSpan().Fill(float.NaN); // backward must overwrite every element
        AdaptiveAvgPoolKernels.BackwardReference(g, n, dOutput, dInput);
        AssertClose(ToArray(x.grad!), dInput, Relative, Absolute, $"adaptive avg pool {h}x{w} -> {oh}x{ow} backward");
    }
}
