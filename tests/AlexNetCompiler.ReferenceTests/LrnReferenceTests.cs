using AlexNetCompiler.Cpu;
using TorchSharp;
using static AlexNetCompiler.ReferenceTests.TorchInterop;
using static TorchSharp.torch;

namespace AlexNetCompiler.ReferenceTests;

/// <summary>
/// LrnKernels reference against torch.nn.functional.local_response_norm. Our alpha is the paper's (applied to
/// the plain window sum); torch averages the window, so torch's alpha is ours times size.
/// </summary>
public sealed class LrnReferenceTests
{
    // Forward: a window sum of <= 8 squares and one pow; ours in double, torch in float32 with extra roundings
    // (it averages the window, then multiplies by alpha*size): |d| <= 1e-6 + 1e-4*|ref|. Gradients go
    // through pow(scale, -beta-1) and a second window sum: |d| <= 1e-4 + 1e-3*|ref|.
    private const double ForwardRelative = 1e-4, ForwardAbsolute = 1e-6;
    private const double GradientRelative = 1e-3, GradientAbsolute = 1e-4;

    [Theory]
    // N, C, H, W, size, alpha (ours), beta, k, input scale
    [InlineData(1, 7, 3, 4, 5, 1e-4f, 0.75f, 2f, 1f)]       // the paper's constants (then LRN is nearly linear)
    [InlineData(2, 6, 5, 5, 3, 0.1f, 0.75f, 1f, 2f)]        // large alpha: the cross-channel term matters
    [InlineData(2, 5, 3, 3, 4, 0.2f, 0.6f, 1.5f, 1.5f)]     // even size: asymmetric window (2 before, 1 after)
    [InlineData(1, 3, 2, 2, 7, 0.3f, 0.75f, 1f, 1f)]        // window wider than the channels
    [InlineData(3, 8, 1, 1, 5, 0.05f, 0.9f, 2f, 3f)]        // 1x1 planes, batch 3
    public void ForwardAndBackwardMatchTorch(int n, int c, int h, int w, int size, float alpha, float beta, float k, float scale)
    {
        var g = new LrnGeometry(c, h, w, size, alpha, beta, k);
        float[] input = RandomArray(n * g.Length, 21, scale);
        float[] dOutput = RandomArray(n * g.Length, 22);

        using var dispose = torch.NewDisposeScope();
        Tensor x = ToLeaf(input, n, c, h, w);
        Tensor y = nn.functional.local_response_norm(x, size, alpha * size, beta, k);
        (y * ToTensor(dOutput, n, c, h, w)).sum().backward();

        var output = new float[input.Length];
        var scaleBuffer = new float[input.Length];
        LrnKernels.ForwardReference(g, n, input, output, scaleBuffer);
        string name = $"LRN size {size} alpha {alpha} beta {beta} k {k}";
        AssertClose(ToArray(y), output, ForwardRelative, ForwardAbsolute, $"{name}: output");

        var inference = new float[input.Length];
        LrnKernels.ForwardReference(g, n, input, inference, Span<float>.Empty);
        Assert.Equal(output, inference);

        var dInput = new float[input.Length];
        LrnKernels.BackwardReference(g, n, input, output, scaleBuffer, dOutput, dInput);
        AssertClose(ToArray(x.grad!), dInput, GradientRelative, GradientAbsolute, $"{name}: dInput");
    }
}
