using AlexNetCompiler.Cpu;

namespace AlexNetCompiler.Tests.Cpu;

public class MaxPoolKernelsTests
{
    /// <summary>(batch, C, H, W, KH, KW, stride, padding).</summary>
    public static TheoryData<int, int, int, int, int, int, int, int> Shapes() => new()
    {
        { 2, 3, 7, 9, 3, 3, 2, 0 },      // overlapping
        { 1, 4, 8, 8, 2, 2, 2, 0 },      // tiling
        { 3, 2, 9, 6, 3, 2, 1, 1 },      // padded, rectangular
        { 1, 5, 10, 11, 3, 3, 3, 1 },
        { 2, 3, 28, 28, 3, 3, 2, 1 },    // FashionNet pool1: padded, 14 windows a row (8 inside, the rest masked)
        { 3, 4, 14, 14, 3, 3, 2, 1 },    // FashionNet pool2: 7 windows a row, all masked
        { 2, 2, 5, 19, 3, 3, 1, 1 },     // stride 1, padded, 19 windows a row
        { 1, 2, 24, 32, 19, 19, 1, 9 },  // 9 windows a row start in the padding (more than one masked group of 8)
        { 2, 96, 55, 55, 3, 3, 2, 0 },   // AlexNet pool1
        { 1, 256, 13, 13, 3, 3, 2, 0 },  // AlexNet pool5
        { 2, 3, 6, 75, 3, 3, 2, 1 },     // stride 2, padded: 36 windows inside a row (16 + 16 + 4 at a time)
        { 1, 2, 5, 41, 4, 2, 2, 0 },     // stride 2, 2 wide and 4 high: 20 windows, each row read to its end
        { 1, 1, 1, 2, 1, 3, 2, 0 },      // a kernel wider than the row: its one window is not inside the row
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Forward_and_backward_match_reference_exactly(int batch, int c, int h, int w, int kh, int kw, int s, int p)
    {
        int oh = (h + 2 * p - kh) / s + 1, ow = (w + 2 * p - kw) / s + 1;
        var g = new PoolGeometry(c, h, w, oh, ow, kh, kw, s, s, p, p);
        float[] input = KernelAssert.Random(batch * g.InputLength, 61);
        // Ties (first maximum wins) and a NaN (always wins) must be routed exactly as the reference does.
        for (int i = 0; i < input.Length; i += 7) input[i] = 0.5f;
        input[input.Length / 2] = float.NaN;
        // A plane of -infinity: every window keeps the index of its first element inside the plane.
        Array.Fill(input, float.NegativeInfinity, 0, h * w);
        int outLength = batch * g.OutputLength;
        var expected = new float[outLength];
        var expectedArg = new int[outLength];
        MaxPoolKernels.ForwardReference(g, batch, input, expected, expectedArg);
        float[] dOutput = KernelAssert.Random(outLength, 62);
        var dInputRef = new float[input.Length];
        MaxPoolKernels.BackwardReference(g, batch, dOutput, expectedArg, dInputRef);

        foreach (int threads in new[] { 1, 2, 3 })
        {
            using var ctx = new CpuContext(threads);
            var actual = new float[outLength];
            var arg = new int[outLength];
            MaxPoolKernels.Forward(g, batch, input, actual, arg, ctx);
            // No arithmetic: values (NaN included) and argmax must be identical.
            Assert.Equal(expected, actual);
            Assert.Equal(expectedArg, arg);
            var inference = new float[outLength];
            MaxPoolKernels.Forward(g, batch, input, inference, Span<int>.Empty, ctx);
            Assert.Equal(expected, inference);

            float[] dInput = KernelAssert.Random(input.Length, 63); // poisoned: backward zeroes first
            MaxPoolKernels.Backward(g, batch, dOutput, arg, dInput, ctx);
            // Same scatter order per plane as the reference: bit-identical sums.
            Assert.Equal(dInputRef, dInput);
        }
    }

    /// <summary>(C, H, W, KH, KW, stride, padding): stride-2 pools, which an inference pass runs row maxima first.</summary>
    public static TheoryData<int, int, int, int, int, int, int> StrideTwoShapes() => new()
    {
        { 3, 55, 55, 3, 3, 2, 0 },  // AlexNet pool1: 27 windows a row (16 + 11)
        { 4, 13, 13, 3, 3, 2, 0 },  // AlexNet pool5
        { 3, 28, 28, 3, 3, 2, 1 },  // FashionNet pool1: padded on every side
        { 2, 9, 75, 3, 3, 2, 1 },   // 38 windows a row: three groups of 16, the last one ragged
        { 2, 11, 41, 4, 2, 2, 0 },  // 2 wide and 4 high
        { 2, 7, 30, 5, 5, 2, 2 },   // 5x5, padded by 2
    };

    [Theory]
    [MemberData(nameof(StrideTwoShapes))]
    public void Inference_keeps_the_reference_bits_of_zeros_infinities_and_nans(int c, int h, int w, int kh, int kw, int s, int p)
    {
        // Every output is a copy of one input, so bits are compared, not values: among equal maxima (+0 and -0 compare
        // equal) the first in row-major order must be the one kept, and of several NaNs (here with different payloads)
        // the last. Plane 0: values from {-1, -0, +0} (ties everywhere); plane 1: -infinity and -0; plane 2 (when there
        // is one): the same ties and two NaNs of different payloads; the others: random values.
        const int batch = 2;
        int oh = (h + 2 * p - kh) / s + 1, ow = (w + 2 * p - kw) / s + 1;
        var g = new PoolGeometry(c, h, w, oh, ow, kh, kw, s, s, p, p);
        int plane = h * w;
        float[] input = KernelAssert.Random(batch * g.InputLength, 71);
        var rng = new Random(72);
        float[] ties = [-1f, -0f, 0f];
        for (int i = 0; i < plane; i++)
        {
            input[i] = ties[rng.Next(3)];
            input[plane + i] = rng.Next(2) == 0 ? float.NegativeInfinity : -0f;
            if (c > 2) input[2 * plane + i] = ties[rng.Next(3)];
        }
        if (c > 2)
        {
            input[2 * plane + w + 1] = BitConverter.Int32BitsToSingle(0x7FC00001);
            input[2 * plane + w + 2] = BitConverter.Int32BitsToSingle(unchecked((int)0xFFC00002));
        }
        var expected = new float[batch * g.OutputLength];
        MaxPoolKernels.ForwardReference(g, batch, input, expected, new int[expected.Length]);
        foreach (int threads in new[] { 1, 2 })
        {
            using var ctx = new CpuContext(threads);
            var actual = KernelAssert.Random(expected.Length, 73); // poisoned: every output must be written
            MaxPoolKernels.Forward(g, batch, input, actual, Span<int>.Empty, ctx);
            for (int i = 0; i < expected.Length; i++)
                Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                    $"output {i} (plane {i / (oh * ow) % c}): expected bits {BitConverter.SingleToInt32Bits(expected[i]):X8}, got {BitConverter.SingleToInt32Bits(actual[i]):X8}");
        }
    }

    [Fact]
    public void Out_of_range_argmax_is_reported()
    {
        var g = new PoolGeometry(1, 4, 4, 2, 2, 2, 2, 2, 2, 0, 0);
        using var ctx = new CpuContext(1);
        var e = Assert.Throws<ArgumentException>(() => MaxPoolKernels.Backward(g, 1, new float[4], new[] { 0, 1, 99, 2 }, new float[16], ctx));
        Assert.Contains("argmax 99", e.Message);
    }
}
