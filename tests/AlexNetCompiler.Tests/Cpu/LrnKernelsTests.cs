using AlexNetCompiler.Cpu;

namespace AlexNetCompiler.Tests.Cpu;

public class LrnKernelsTests
{
    /// <summary>(batch, C, H, W, size, alpha, beta, k). Large alphas make the cross-channel term of the gradient
    /// comparable to the direct one, so a wrong window cannot hide below the tolerance.</summary>
    public static TheoryData<int, int, int, int, int, float, float, float> Shapes() => new()
    {
        { 2, 7, 5, 3, 5, 0.3f, 0.75f, 1f },     // beta 0.75: the sqrt path
        { 1, 3, 17, 19, 5, 0.5f, 0.6f, 2f },    // any other beta: exp(-beta log s)
        { 3, 10, 4, 4, 4, 0.4f, 0.75f, 1f },    // even size: asymmetric window
        { 1, 2, 6, 7, 5, 0.2f, 0.75f, 1.5f },   // window wider than the channels
        { 2, 6, 3, 5, 1, 1f, 1f, 1f },          // size 1, beta 1
        { 1, 96, 55, 55, 5, 1e-4f, 0.75f, 2f }, // AlexNet after conv1
        { 2, 256, 27, 27, 5, 1e-4f, 0.75f, 2f },// AlexNet after conv2
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Forward_and_backward_match_reference(int batch, int c, int h, int w, int size, float alpha, float beta, float k)
    {
        var g = new LrnGeometry(c, h, w, size, alpha, beta, k);
        int length = batch * g.Length;
        float[] input = KernelAssert.Random(length, 51, -2f, 2f), dOutput = KernelAssert.Random(length, 52);
        var output = new float[length];
        var scale = new float[length];
        LrnKernels.ForwardReference(g, batch, input, output, scale);
        var dInput = new float[length];
        LrnKernels.BackwardReference(g, batch, input, output, scale, dOutput, dInput);
        // Magnitude of the two gradient terms |dy s^-beta| + |2 alpha beta x sum dy y / s|: the reference run on
        // |dy|, |y| and -|x| adds them without cancellation.
        var dInputMagnitude = new float[length];
        LrnKernels.BackwardReference(g, batch, KernelAssert.NegativeAbs(input), KernelAssert.Abs(output), scale, KernelAssert.Abs(dOutput), dInputMagnitude);

        foreach (int threads in new[] { 1, 2 })
        {
            using var ctx = new CpuContext(threads);
            var outFast = new float[length];
            var scaleFast = new float[length];
            LrnKernels.Forward(g, batch, input, outFast, scaleFast, ctx);
            // Float: a sum of <= size squares (size roundings), one FMA for the scale, then s^-beta from a sqrt,
            // a division and a sqrt (or exp/log, a few ulp) and a product: well under 32 ulp = 32 * 2^-24 ~ 1.9e-6
            // of each value. The reference is double.
            KernelAssert.WithinRelative(scale, scaleFast, scale, 2e-6, $"LRN scale threads={threads}");
            KernelAssert.WithinRelative(output, outFast, output, 2e-6, $"LRN output threads={threads}");

            var inference = new float[length];
            LrnKernels.Forward(g, batch, input, inference, Span<float>.Empty, ctx);
            Assert.Equal(outFast, inference);

            var dInputFast = new float[length];
            LrnKernels.Backward(g, batch, input, output, scale, dOutput, dInputFast, ctx);
            // Each of the two terms carries a few ulp (s^-beta, the ratios dy y / s, their window sum): 1e-5 of
            // their combined magnitude (~170 ulp) is loose for rounding and far below a wrong or missing window term.
            KernelAssert.WithinRelative(dInput, dInputFast, dInputMagnitude, 1e-5, $"LRN dInput threads={threads}");
        }
    }

    [Fact]
    public void Mismatched_scale_is_rejected()
    {
        var g = new LrnGeometry(4, 2, 2, 3, 1e-4f, 0.75f, 2f);
        using var ctx = new CpuContext(1);
        var e = Assert.Throws<ArgumentException>(() => LrnKernels.Forward(g, 1, new float[16], new float[16], new float[15], ctx));
        Assert.Contains("scale", e.Message);
    }
}
