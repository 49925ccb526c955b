using AlexNetCompiler.Cpu;
using TorchSharp;
using static AlexNetCompiler.ReferenceTests.TorchInterop;
using static TorchSharp.torch;

namespace AlexNetCompiler.ReferenceTests;

/// <summary>MaxPoolKernels reference against torch.nn.functional.max_pool2d (-inf padding, floor mode).</summary>
public sealed class MaxPoolReferenceTests
{
    // Max pooling only selects and routes values: forward and gradients must be exactly equal, including
    // which element of a tie receives the gradient (the first in row-major order, as torch's CPU kernel).
    [Theory]
    // N, C, H, W, KH, KW, SH, SW, PH, PW, ties
    [InlineData(1, 2, 7, 7, 3, 3, 2, 2, 0, 0, false)]   // overlapping 3/2 (AlexNet)
    [InlineData(2, 3, 13, 13, 3, 3, 2, 2, 1, 1, false)] // padding
    [InlineData(2, 2, 8, 9, 2, 3, 2, 1, 1, 1, false)]   // rectangular kernel and strides
    [InlineData(1, 1, 6, 6, 3, 3, 3, 3, 0, 0, false)]   // non-overlapping
    [InlineData(2, 3, 9, 8, 3, 3, 2, 2, 1, 1, true)]    // many ties: small integers
    [InlineData(1, 2, 6, 5, 2, 2, 1, 1, 1, 1, true)]    // ties, stride 1, windows reading mostly padding
    public void ForwardAndBackwardMatchTorch(int n, int c, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw, bool ties)
    {
        int oh = (h + 2 * ph - kh) / sh + 1, ow = (w + 2 * pw - kw) / sw + 1;
        var g = new PoolGeometry(c, h, w, oh, ow, kh, kw, sh, sw, ph, pw);
        float[] input = RandomArray(n * g.InputLength, 31);
        if (ties) for (int i = 0; i < input.Length; i++) input[i] = MathF.Round(input[i]);
        float[] dOutput = RandomArray(n * g.OutputLength, 32);

        using var dispose = torch.NewDisposeScope();
        Tensor x = ToLeaf(input, n, c, h, w);
        Tensor y = nn.functional.max_pool2d(x, [kh, kw], [sh, sw], [ph, pw]);
        (y * ToTensor(dOutput, n, c, oh, ow)).sum().backward();

        var output = new float[n * g.OutputLength];
        var argmax = new int[output.Length];
        MaxPoolKernels.ForwardReference(g, n, input, output, argmax);
        Assert.Equal(ToArray(y), output);

        var dInput = new float[input.Length];
        dInput.AsSpan().Fill(float.NaN); // backward must overwrite every element
        MaxPoolKernels.BackwardReference(g, n, dOutput, argmax, dInput);
        Assert.Equal(ToArray(x.grad!), dInput);
    }
}
