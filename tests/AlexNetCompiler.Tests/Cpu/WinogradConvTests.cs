using AlexNetCompiler.Cpu;
using Xunit.Abstractions;

namespace AlexNetCompiler.Tests.Cpu;

/// <summary>
/// The Winograd F(4x4, 3x3) and F(2x2, 5x5) paths of <see cref="Conv2dKernels"/> (forward, input gradient and weight
/// gradient) against the plain reference, which sums in double and rounds once.
/// <para>
/// Tolerances. Winograd is not a reordering of the direct sum: the input transform multiplies by up to 5 and adds
/// up to four terms, the filter transform divides by 6, 12 and 24 (in float), the output
/// transform multiplies by up to 8 and adds up to five terms, and the 36 products are summed over the input channels in
/// float32 by the GEMM. The rounding errors of the transformed operands are amplified by these coefficients and cancel
/// only partly in the output transform, so the error is a constant factor above a float32 direct convolution's. Checked
/// per tensor, with the output's own scale as the reference: relative L2 ||fast - ref|| / ||ref|| &lt;=
/// <see cref="RelativeL2"/> and max |fast - ref| / max |ref| &lt;= <see cref="MaxRelative"/>.
/// Measured on conv3-conv5 of both AlexNets at 13x13 (batch 2, He weights, post-ReLU inputs, half-zero output
/// gradients): forward relative L2 2.2e-6 to 2.6e-6 and max 8.3e-6 to 1.15e-5; input gradient relative L2 2.2e-6 to
/// 3.1e-6 and max 8.8e-6 to 1.17e-5 (a filter transform in double, rounded once, measured the same to two digits);
/// weight gradient (summed over every tile, then turned back with G^T . G) relative L2 9.4e-7 to 9.8e-7 and max 3.0e-6
/// to 3.5e-6. im2col + GEMM on the same data: relative L2 about 2e-7 (1.2e-7 for the weight gradient), max about 3e-7, so
/// Winograd is about 12x less accurate (8x for the weight gradient), and its error grows with the channel count (the small shapes below: relative
/// L2 at most 1.9e-6). The bounds leave a margin of 3x (L2) and 4x (max) over the worst measured. One transform
/// coefficient changed was tried: 1/24 to 1/25 in G's fourth row fails all 38 numeric cases (relative L2 2.4e-3 to
/// 2.1e-2); 8 to 7 in A^T's last row fails every case that writes a fourth output row or column (relative L2 0.2 to
/// 0.4); the five that pass never use that row (3x3 outputs, and the refusal test). In the weight gradient's own
/// transforms, 1/24 to 1/25 in G^T failed 23 of the 43 cases and 8 to 7 in A failed 20 (every gradient case whose
/// output gradient has a fourth row or column).
/// </para>
/// <para>
/// F(2x2, 5x5) (5x5 filters) is held to the same bounds. Measured on both AlexNets' conv2 (27x27, batch 2, data as
/// above): forward relative L2 1.4e-6 to 1.6e-6 and max 3.4e-6 to 4.4e-6; input gradient 2.6e-6 to 3.1e-6 and max
/// 6.5e-6 to 7.0e-6; weight gradient 2.3e-6 to 2.4e-6 and max 1.1e-5 to 1.3e-5 (im2col: about 2e-7). The small 5x5
/// shapes below: relative L2 at most 3.2e-6. The margin over the worst measured is 3x (L2) and 3.8x (max). Coefficients
/// changed one at a time, then restored: 2/3 to 0.6 in G failed 36 of the 83 tests, 2 to 3 in
/// A^T 34, 2 to 3 in A (the weight gradient's) 17, 1/3 to 1/4 in G^T 19.
/// </para>
/// </summary>
public sealed class WinogradConvTests(ITestOutputHelper output)
{
    private const double RelativeL2 = 1e-5, MaxRelative = 5e-5;

    private static Conv2dGeometry Geometry(int c, int h, int w, int oc, int p, int groups, int kernel = 3) =>
        new(c, h, w, oc, h + 2 * p - kernel + 1, w + 2 * p - kernel + 1, kernel, kernel, 1, 1, p, p, groups);

    /// <summary>
    /// (name, batch, C, H, W, OC, padding, groups, kernel): odd sizes, edge tiles, channels that fill no vector, for
    /// F(4x4, 3x3) and F(2x2, 5x5).
    /// </summary>
    public static TheoryData<string, int, int, int, int, int, int, int, int> SmallShapes()
    {
        var data = new TheoryData<string, int, int, int, int, int, int, int, int>();
        foreach (int size in new[] { 5, 7, 13 })
            foreach (int padding in new[] { 0, 1 })
                foreach (int groups in new[] { 1, 2 })
                    data.Add($"{size}x{size} pad {padding} groups {groups}", 2, 6, size, size, 10, padding, groups, 3);
        data.Add("rectangular 6x11 pad 2", 3, 5, 6, 11, 7, 2, 1, 3);
        data.Add("one output row and column (3x3 valid)", 2, 3, 3, 3, 4, 0, 1, 3);
        data.Add("chunks across samples", 15, 4, 13, 13, 6, 0, 2, 3); // 9 tiles a sample: a chunk ends mid-sample
        // 270 tiles: the weight gradient adds a second, short chunk (WinogradWeightChunkTiles), ending mid-sample.
        data.Add("weight gradient over two chunks", 30, 6, 13, 13, 10, 0, 2, 3);
        data.Add("several blocks of output channels, batch 1", 1, 20, 9, 9, 30, 1, 1, 3); // 3 blocks split over threads
        data.Add("wide channels 40 -> 70", 1, 40, 12, 12, 70, 1, 1, 3);
        // 5x5 filters, 2x2 output tiles: odd planes leave a last tile half outside, padding 0 to 4.
        foreach (int size in new[] { 5, 8, 13 })
            foreach (int padding in new[] { 0, 2 })
                foreach (int groups in new[] { 1, 2 })
                    data.Add($"5x5 filters, {size}x{size} pad {padding} groups {groups}", 2, 6, size, size, 10, padding, groups, 5);
        data.Add("5x5 filters, rectangular 7x12 pad 4", 3, 5, 7, 12, 7, 4, 1, 5);
        data.Add("5x5 filters, pad 1 and 3", 2, 9, 11, 11, 6, 1, 1, 5);
        data.Add("5x5 filters, chunks across samples", 11, 4, 9, 9, 6, 2, 2, 5); // 25 tiles a sample
        // 13x13, padding 2: 49 tiles a sample, 294 in all: the weight gradient's second chunk ends mid-sample.
        data.Add("5x5 filters, weight gradient over two chunks", 6, 6, 13, 13, 10, 2, 1, 5);
        data.Add("5x5 filters, several blocks of output channels, batch 1", 1, 20, 9, 9, 30, 2, 1, 5);
        return data;
    }

    [Theory]
    [MemberData(nameof(SmallShapes))]
    public void Forward_matches_reference_on_small_shapes(string name, int batch, int c, int h, int w, int oc, int padding, int groups, int kernel)
    {
        Conv2dGeometry g = Geometry(c, h, w, oc, padding, groups, kernel);
        float[] input = KernelAssert.Random(batch * g.InputLength, 31), weight = KernelAssert.Random(g.WeightLength, 32, -0.3f, 0.3f);
        float[] bias = KernelAssert.Random(oc, 33);
        foreach (bool relu in new[] { false, true })
        {
            var expected = new float[batch * g.OutputLength];
            Conv2dKernels.ForwardReference(g, batch, input, weight, bias, expected, relu);
            float[]? oneThread = null;
            foreach (int threads in new[] { 1, 2, 3 })
            {
                using var ctx = new CpuContext(threads);
                float[] actual = KernelAssert.Random(expected.Length, 34); // poisoned: every element must be written
                Conv2dKernels.Forward(g, batch, input, weight, bias, actual, relu, ctx, Conv2dAlgorithm.Winograd);
                AssertClose(expected, actual, $"{name} forward relu={relu} threads={threads}");
                // The work items depend on the shape only: any thread count gives the same bits.
                if (oneThread is null) oneThread = actual;
                else Assert.Equal(oneThread, actual);
            }
        }
    }

    [Theory]
    [MemberData(nameof(SmallShapes))]
    public void Gradients_match_reference_on_small_shapes(string name, int batch, int c, int h, int w, int oc, int padding, int groups, int kernel)
    {
        Conv2dGeometry g = Geometry(c, h, w, oc, padding, groups, kernel);
        float[] input = KernelAssert.Random(batch * g.InputLength, 41), weight = KernelAssert.Random(g.WeightLength, 42, -0.3f, 0.3f);
        float[] dOutput = KernelAssert.Random(batch * g.OutputLength, 43);
        float[] dInputRef = new float[input.Length], dWeightRef = new float[weight.Length], dBiasRef = new float[oc];
        Conv2dKernels.BackwardReference(g, batch, input, weight, dOutput, dInputRef, dWeightRef, dBiasRef);
        float[]? oneThread = null, oneThreadWeight = null;
        foreach (int threads in new[] { 1, 2, 3 })
        {
            using var ctx = new CpuContext(threads);
            // Poisoned: every element must be written.
            float[] dInput = KernelAssert.Random(input.Length, 44), dWeight = KernelAssert.Random(weight.Length, 45), dBias = KernelAssert.Random(oc, 47);
            Conv2dKernels.Backward(g, batch, input, weight, dOutput, dInput, dWeight, dBias, ctx, Conv2dAlgorithm.Winograd);
            AssertClose(dInputRef, dInput, $"{name} dInput threads={threads}");
            AssertClose(dWeightRef, dWeight, $"{name} dWeight threads={threads}");
            AssertClose(dBiasRef, dBias, $"{name} dBias threads={threads}");
            if (oneThread is null) (oneThread, oneThreadWeight) = (dInput, dWeight);
            else
            {
                Assert.Equal(oneThread, dInput);
                Assert.Equal(oneThreadWeight, dWeight);
            }
            // Without an input gradient (a first layer) the weight gradient is the same computation.
            float[] dWeightOnly = KernelAssert.Random(weight.Length, 46);
            Conv2dKernels.Backward(g, batch, input, weight, dOutput, Span<float>.Empty, dWeightOnly, Span<float>.Empty, ctx, Conv2dAlgorithm.Winograd);
            Assert.Equal(dWeight, dWeightOnly);
        }
    }

    /// <summary>
    /// (name, C, OC, groups, size, kernel): conv3-conv5 of the canonical AlexNet and of torchvision's, all 13x13 with
    /// 3x3 filters and padding 1, and both conv2s, 27x27 with 5x5 filters and padding 2.
    /// </summary>
    public static TheoryData<string, int, int, int, int, int> AlexNetLayers() => new()
    {
        { "AlexNet2012 conv2", 96, 256, 2, 27, 5 },
        { "AlexNet2012 conv3", 256, 384, 1, 13, 3 },
        { "AlexNet2012 conv4", 384, 384, 2, 13, 3 },
        { "AlexNet2012 conv5", 384, 256, 2, 13, 3 },
        { "torchvision conv2", 64, 192, 1, 27, 5 },
        { "torchvision conv3", 192, 384, 1, 13, 3 },
        { "torchvision conv4", 384, 256, 1, 13, 3 },
        { "torchvision conv5", 256, 256, 1, 13, 3 },
    };

    [Theory]
    [MemberData(nameof(AlexNetLayers))]
    public void AlexNet_layers_are_within_the_stated_tolerance(string name, int c, int oc, int groups, int size, int kernel)
    {
        const int batch = 2;
        Conv2dGeometry g = Geometry(c, size, size, oc, kernel / 2, groups, kernel);
        var rng = new Random(7);
        // He initialisation, N(0, 2 / fan-in); inputs and output gradients like those behind a ReLU (half zero).
        float[] weight = Normal(rng, g.WeightLength, Math.Sqrt(2.0 / (c / groups * kernel * kernel)));
        float[] input = Relu(Normal(rng, batch * g.InputLength, 1.0));
        float[] bias = Normal(rng, oc, 0.01);
        float[] dOutput = Relu(Normal(rng, batch * g.OutputLength, 1e-3), keepSign: true);
        using var ctx = new CpuContext(2);

        var expected = new float[batch * g.OutputLength];
        Conv2dKernels.ForwardReference(g, batch, input, weight, bias, expected, relu: false);
        var actual = new float[expected.Length];
        Conv2dKernels.Forward(g, batch, input, weight, bias, actual, relu: false, ctx, Conv2dAlgorithm.Winograd);
        AssertClose(expected, actual, $"{name} forward");
        var im2col = new float[expected.Length];
        Conv2dKernels.Forward(g, batch, input, weight, bias, im2col, relu: false, ctx, Conv2dAlgorithm.Im2Col);
        Report(expected, im2col, $"{name} forward, im2col (for comparison)");

        float[] dInputRef = new float[input.Length], dWeightRef = new float[weight.Length], dBiasRef = new float[oc];
        Conv2dKernels.BackwardReference(g, batch, input, weight, dOutput, dInputRef, dWeightRef, dBiasRef);
        float[] dInput = new float[input.Length], dWeight = new float[weight.Length], dBias = new float[oc];
        Conv2dKernels.Backward(g, batch, input, weight, dOutput, dInput, dWeight, dBias, ctx, Conv2dAlgorithm.Winograd);
        AssertClose(dInputRef, dInput, $"{name} dInput");
        AssertClose(dWeightRef, dWeight, $"{name} dWeight");
        Conv2dKernels.Backward(g, batch, input, weight, dOutput, dInput, dWeight, dBias, ctx, Conv2dAlgorithm.Im2Col);
        Report(dInputRef, dInput, $"{name} dInput, im2col (for comparison)");
        Report(dWeightRef, dWeight, $"{name} dWeight, im2col (for comparison)");
    }

    /// <summary>
    /// Auto: Winograd for 3x3 stride-1 layers of 64 or more input and 32 or more output channels per group at batch 16
    /// or more, forward and both gradients, and an inference pass's forward pass from batch 2 (batch 1 with AVX-512);
    /// for 5x5 layers, the forward pass from 48 input channels per group and both gradients from 64 (docs/architecture.md).
    /// </summary>
    [Fact]
    public void Auto_picks_winograd_where_the_rule_says()
    {
        Conv2dGeometry torchvisionConv5 = Geometry(256, 13, 13, 256, 1, 1), alexNetConv5 = Geometry(384, 13, 13, 256, 1, 2);
        Conv2dGeometry fashionNetConv5 = Geometry(128, 7, 7, 64, 1, 2); // 64 -> 32 channels per group
        Conv2dGeometry fashionNetConv2 = Geometry(32, 14, 14, 64, 1, 1); // 32 input channels: no faster, stays on im2col
        Conv2dGeometry fewOutputs = Geometry(128, 7, 7, 62, 1, 2); // 64 -> 31 channels per group
        Assert.True(Conv2dKernels.UsesWinogradForward(torchvisionConv5, 16, Conv2dAlgorithm.Auto));
        Assert.True(Conv2dKernels.UsesWinogradData(torchvisionConv5, 16, Conv2dAlgorithm.Auto));
        Assert.True(Conv2dKernels.UsesWinogradWeight(torchvisionConv5, 16, Conv2dAlgorithm.Auto));
        Assert.False(Conv2dKernels.UsesWinogradWeight(torchvisionConv5, 15, Conv2dAlgorithm.Auto));
        Assert.True(Conv2dKernels.UsesWinogradForward(alexNetConv5, 32, Conv2dAlgorithm.Auto)); // 192 -> 128 per group
        Assert.True(Conv2dKernels.UsesWinogradData(alexNetConv5, 16, Conv2dAlgorithm.Auto));
        Assert.True(Conv2dKernels.UsesWinogradForward(fashionNetConv5, 64, Conv2dAlgorithm.Auto));
        Assert.True(Conv2dKernels.UsesWinogradWeight(fashionNetConv5, 64, Conv2dAlgorithm.Auto));
        Assert.False(Conv2dKernels.UsesWinogradForward(fashionNetConv2, 64, Conv2dAlgorithm.Auto));
        Assert.False(Conv2dKernels.UsesWinogradData(fashionNetConv2, 64, Conv2dAlgorithm.Auto));
        Assert.False(Conv2dKernels.UsesWinogradForward(fewOutputs, 64, Conv2dAlgorithm.Auto));
        Assert.False(Conv2dKernels.UsesWinogradForward(fashionNetConv5, 1, Conv2dAlgorithm.Auto));
        Assert.False(Conv2dKernels.UsesWinogradForward(torchvisionConv5, 15, Conv2dAlgorithm.Auto)); // slower at batch 1; 16 is the least measured
        Assert.False(Conv2dKernels.UsesWinogradForward(torchvisionConv5, 16, Conv2dAlgorithm.Im2Col));
        Assert.True(Conv2dKernels.UsesWinogradForward(fashionNetConv2, 1, Conv2dAlgorithm.Winograd));

        // An inference pass (transformed filters cached) on 16 tiles a group or more, from batch 2, and from batch 1
        // where AVX-512 multiplies them with 16-wide kernels; a training step (filters transformed on every call) from
        // batch 16.
        bool vector512 = Gemm.BestKernel == GemmKernel.Vector512;
        Assert.True(Conv2dKernels.UsesWinogradForward(torchvisionConv5, 2, Conv2dAlgorithm.Auto, cached: true));
        Assert.False(Conv2dKernels.UsesWinogradForward(torchvisionConv5, 2, Conv2dAlgorithm.Auto, cached: false));
        Assert.False(Conv2dKernels.UsesWinogradForward(torchvisionConv5, 1, Conv2dAlgorithm.Auto, cached: false));
        Assert.Equal(vector512, Conv2dKernels.UsesWinogradForward(torchvisionConv5, 1, Conv2dAlgorithm.Auto, cached: true));
        Assert.Equal(vector512, Conv2dKernels.UsesWinogradForward(alexNetConv5, 1, Conv2dAlgorithm.Auto, cached: true));
        Assert.False(Conv2dKernels.UsesWinogradForward(fashionNetConv5, 1, Conv2dAlgorithm.Auto, cached: true)); // 4 tiles
        Assert.False(Conv2dKernels.UsesWinogradForward(fashionNetConv5, 3, Conv2dAlgorithm.Auto, cached: true)); // 12 tiles
        Assert.True(Conv2dKernels.UsesWinogradForward(fashionNetConv5, 4, Conv2dAlgorithm.Auto, cached: true));
        Assert.False(Conv2dKernels.UsesWinogradForward(torchvisionConv5, 1, Conv2dAlgorithm.Im2Col, cached: true));
        Assert.False(Conv2dKernels.UsesWinogradForward(fashionNetConv2, 1, Conv2dAlgorithm.Auto, cached: true)); // 32 input channels
        Assert.False(Conv2dKernels.UsesWinogradForward(fewOutputs, 1, Conv2dAlgorithm.Auto, cached: true));

        Conv2dGeometry torchvisionConv2 = Geometry(64, 27, 27, 192, 2, 1, kernel: 5);
        Conv2dGeometry alexNetConv2 = Geometry(96, 27, 27, 256, 2, 2, kernel: 5); // 48 input channels per group
        Conv2dGeometry cifarNetConv2 = Geometry(64, 16, 16, 128, 2, 2, kernel: 5); // 32 per group: not measured
        Assert.True(Conv2dKernels.UsesWinogradForward(torchvisionConv2, 16, Conv2dAlgorithm.Auto));
        Assert.False(Conv2dKernels.UsesWinogradForward(torchvisionConv2, 15, Conv2dAlgorithm.Auto));
        Assert.True(Conv2dKernels.UsesWinogradForward(torchvisionConv2, 2, Conv2dAlgorithm.Auto, cached: true));
        Assert.Equal(vector512, Conv2dKernels.UsesWinogradForward(torchvisionConv2, 1, Conv2dAlgorithm.Auto, cached: true));
        Assert.True(Conv2dKernels.UsesWinogradData(torchvisionConv2, 16, Conv2dAlgorithm.Auto));
        Assert.True(Conv2dKernels.UsesWinogradWeight(torchvisionConv2, 16, Conv2dAlgorithm.Auto));
        Assert.False(Conv2dKernels.UsesWinogradData(torchvisionConv2, 15, Conv2dAlgorithm.Auto));
        Assert.False(Conv2dKernels.UsesWinogradData(torchvisionConv2, 16, Conv2dAlgorithm.Im2Col));
        Assert.True(Conv2dKernels.UsesWinogradWeight(torchvisionConv2, 1, Conv2dAlgorithm.Winograd));
        Assert.True(Conv2dKernels.UsesWinogradForward(alexNetConv2, 16, Conv2dAlgorithm.Auto));
        Assert.False(Conv2dKernels.UsesWinogradData(alexNetConv2, 16, Conv2dAlgorithm.Auto)); // at parity: stays on im2col
        Assert.False(Conv2dKernels.UsesWinogradWeight(alexNetConv2, 16, Conv2dAlgorithm.Auto));
        Assert.False(Conv2dKernels.UsesWinogradForward(cifarNetConv2, 64, Conv2dAlgorithm.Auto));
    }

    /// <summary>
    /// A batch of at most 16 tiles a group is one chunk, multiplied by 16-wide kernels on unpacked rows
    /// (Conv2dKernels.NarrowProduct, with AVX-512) instead of the packed GEMM a batch of 16 runs; each output is the same
    /// operations in the same order, so a sample alone gives the bits it gets inside the batch. conv4's 384 input channels
    /// span two of the GEMM's K blocks and its 256 output channels end in a block of 4; the canonical conv4 has two
    /// groups; a 7x7 plane has 4 tiles, half of the 8 lanes the input transform writes.
    /// </summary>
    [Theory]
    [InlineData("torchvision conv4", 384, 13, 256, 1)]
    [InlineData("AlexNet2012 conv4, two groups", 384, 13, 384, 2)]
    [InlineData("FashionNet conv5, 7x7", 128, 7, 64, 2)]
    public void A_sample_alone_gives_the_bits_it_gets_in_a_batch(string name, int c, int size, int oc, int groups)
    {
        _ = name;
        Conv2dGeometry g = Geometry(c, size, size, oc, 1, groups);
        using var ctx = new CpuContext(2);
        const int batch = 16;
        float[] input = KernelAssert.Random(batch * g.InputLength, 21), bias = KernelAssert.Random(g.OutChannels, 23);
        float[] weight = KernelAssert.Random(g.WeightLength, 22, -0.1f, 0.1f);
        var inBatch = new float[batch * g.OutputLength];
        Conv2dKernels.Forward(g, batch, input, weight, bias, inBatch, relu: true, ctx, Conv2dAlgorithm.Winograd);

        var cache = new Conv2dWeightCache();
        foreach (int n in new[] { 0, 9, 15 })
        {
            var alone = new float[g.OutputLength];
            Conv2dKernels.Forward(g, 1, input.AsSpan(n * g.InputLength, g.InputLength), weight, bias, alone, relu: true, ctx,
                Conv2dAlgorithm.Winograd, cache);
            Assert.Equal(inBatch.AsSpan(n * g.OutputLength, g.OutputLength).ToArray(), alone);
        }
        Assert.Equal(1, cache.Preparations);
    }

    [Theory]
    [InlineData(48, false)]
    [InlineData(64, true)]
    public void Auto_runs_a_5x5_layers_forward_by_winograd_and_its_gradients_from_64_channels(int inChannels, bool winogradBackward)
    {
        // A 5x5 layer of 48 or 64 -> 32 channels at batch 16: under Auto the forward pass gives the forced Winograd
        // bits, and the backward pass Winograd's from 64 input channels, im2col's below.
        const int batch = 16;
        Conv2dGeometry g = Geometry(inChannels, 6, 6, 32, 2, 1, kernel: 5);
        float[] input = KernelAssert.Random(batch * g.InputLength, 61), weight = KernelAssert.Random(g.WeightLength, 62, -0.1f, 0.1f);
        float[] bias = KernelAssert.Random(g.OutChannels, 63), dOutput = KernelAssert.Random(batch * g.OutputLength, 64);
        using var ctx = new CpuContext(2);
        float[] Forward(Conv2dAlgorithm algorithm)
        {
            var result = new float[batch * g.OutputLength];
            Conv2dKernels.Forward(g, batch, input, weight, bias, result, relu: true, ctx, algorithm);
            return result;
        }
        float[] Backward(Conv2dAlgorithm algorithm)
        {
            float[] dInput = new float[input.Length], dWeight = new float[weight.Length];
            Conv2dKernels.Backward(g, batch, input, weight, dOutput, dInput, dWeight, new float[g.OutChannels], ctx, algorithm);
            return [.. dInput, .. dWeight];
        }
        Assert.Equal(Forward(Conv2dAlgorithm.Winograd), Forward(Conv2dAlgorithm.Auto));
        Assert.NotEqual(Forward(Conv2dAlgorithm.Im2Col), Forward(Conv2dAlgorithm.Auto)); // else the check above proves nothing
        Conv2dAlgorithm expected = winogradBackward ? Conv2dAlgorithm.Winograd : Conv2dAlgorithm.Im2Col;
        Conv2dAlgorithm other = winogradBackward ? Conv2dAlgorithm.Im2Col : Conv2dAlgorithm.Winograd;
        Assert.Equal(Backward(expected), Backward(Conv2dAlgorithm.Auto));
        Assert.NotEqual(Backward(other), Backward(Conv2dAlgorithm.Auto));
    }

    [Fact]
    public void A_context_set_to_im2col_keeps_autos_calls_on_im2col()
    {
        // A wide 3x3 layer at batch 16, where Auto picks Winograd: a context set to Im2Col gives im2col's bits instead.
        Conv2dGeometry g = Geometry(128, 6, 6, 128, 1, 1);
        const int batch = 16;
        float[] input = KernelAssert.Random(batch * g.InputLength, 41), weight = KernelAssert.Random(g.WeightLength, 42, -0.1f, 0.1f);
        float[] bias = KernelAssert.Random(g.OutChannels, 43);
        float[] Run(CpuContext ctx, Conv2dAlgorithm algorithm)
        {
            var result = new float[batch * g.OutputLength];
            Conv2dKernels.Forward(g, batch, input, weight, bias, result, relu: false, ctx, algorithm);
            return result;
        }
        using var auto = new CpuContext(2);
        using var im2col = new CpuContext(2) { Conv2dAlgorithm = Conv2dAlgorithm.Im2Col };

        Assert.True(Conv2dKernels.UsesWinogradForward(g, batch, Conv2dAlgorithm.Auto));
        Assert.Equal(Run(auto, Conv2dAlgorithm.Im2Col), Run(im2col, Conv2dAlgorithm.Auto));
        Assert.Equal(Run(auto, Conv2dAlgorithm.Winograd), Run(auto, Conv2dAlgorithm.Auto));
        Assert.NotEqual(Run(auto, Conv2dAlgorithm.Im2Col), Run(auto, Conv2dAlgorithm.Winograd)); // else the check above proves nothing
        Assert.Throws<ArgumentException>(() => new CpuContext(1) { Conv2dAlgorithm = Conv2dAlgorithm.Winograd });
    }

    [Fact]
    public void Backward_under_auto_runs_winograd_gradients_where_the_rule_says()
    {
        const int batch = 16;
        Conv2dGeometry g = Geometry(64, 6, 6, 32, 1, 1); // 64 -> 32 channels: Winograd at batch 16
        Conv2dGeometry padded = Geometry(64, 6, 6, 32, 3, 1); // padding 3: no Winograd input gradient
        (float[] DInput, float[] DWeight) Run(Conv2dGeometry shape, CpuContext ctx, Conv2dAlgorithm algorithm, bool withInput)
        {
            float[] input = KernelAssert.Random(batch * shape.InputLength, 51), weight = KernelAssert.Random(shape.WeightLength, 52, -0.1f, 0.1f);
            float[] dOutput = KernelAssert.Random(batch * shape.OutputLength, 53);
            float[] dInput = withInput ? new float[input.Length] : [], dWeight = new float[weight.Length];
            Conv2dKernels.Backward(shape, batch, input, weight, dOutput, dInput, dWeight, new float[shape.OutChannels], ctx, algorithm);
            return (dInput, dWeight);
        }
        using var auto = new CpuContext(2);
        using var im2col = new CpuContext(2) { Conv2dAlgorithm = Conv2dAlgorithm.Im2Col };

        Assert.True(Conv2dKernels.UsesWinogradData(g, batch, Conv2dAlgorithm.Auto));
        var winograd = Run(g, auto, Conv2dAlgorithm.Winograd, withInput: true);
        var chosen = Run(g, auto, Conv2dAlgorithm.Auto, withInput: true);
        Assert.Equal(winograd.DInput, chosen.DInput);
        Assert.Equal(winograd.DWeight, chosen.DWeight);
        var forcedIm2Col = Run(g, auto, Conv2dAlgorithm.Im2Col, withInput: true);
        var contextIm2Col = Run(g, im2col, Conv2dAlgorithm.Auto, withInput: true);
        Assert.Equal(forcedIm2Col.DInput, contextIm2Col.DInput);
        Assert.Equal(forcedIm2Col.DWeight, contextIm2Col.DWeight);
        Assert.NotEqual(forcedIm2Col.DWeight, winograd.DWeight); // else the checks above prove nothing
        // Without an input gradient the weight gradient decides alone: still Winograd.
        Assert.Equal(winograd.DWeight, Run(g, auto, Conv2dAlgorithm.Auto, withInput: false).DWeight);

        // Padding 3: the input gradient runs im2col items, which compute the weight gradient too.
        Assert.False(Conv2dKernels.UsesWinogradData(padded, batch, Conv2dAlgorithm.Auto));
        Assert.True(Conv2dKernels.UsesWinogradWeight(padded, batch, Conv2dAlgorithm.Auto));
        Assert.Equal(Run(padded, auto, Conv2dAlgorithm.Im2Col, withInput: true).DWeight, Run(padded, auto, Conv2dAlgorithm.Auto, withInput: true).DWeight);
        // Alone, its weight gradient runs Winograd (any padding).
        Assert.Equal(Run(padded, auto, Conv2dAlgorithm.Winograd, withInput: false).DWeight, Run(padded, auto, Conv2dAlgorithm.Auto, withInput: false).DWeight);
        Assert.NotEqual(Run(padded, auto, Conv2dAlgorithm.Im2Col, withInput: false).DWeight, Run(padded, auto, Conv2dAlgorithm.Auto, withInput: false).DWeight);
    }

    [Fact]
    public void Forcing_winograd_on_another_shape_is_refused()
    {
        Conv2dGeometry g = new(4, 9, 9, 4, 4, 4, 3, 3, 2, 2, 0, 0, 1);
        using var ctx = new CpuContext(1);
        var e = Assert.Throws<ArgumentException>(() => Conv2dKernels.Forward(g, 1, new float[g.InputLength], new float[g.WeightLength], [], new float[g.OutputLength], false, ctx, Conv2dAlgorithm.Winograd));
        Assert.Contains("stride 1", e.Message);
        // The weight gradient alone (no input gradient) is refused the same way.
        e = Assert.Throws<ArgumentException>(() => Conv2dKernels.Backward(g, 1, new float[g.InputLength], new float[g.WeightLength], new float[g.OutputLength], [], new float[g.WeightLength], [], ctx, Conv2dAlgorithm.Winograd));
        Assert.Contains("stride 1", e.Message);
        Conv2dGeometry wide = Geometry(4, 9, 9, 4, 3, 1);
        e = Assert.Throws<ArgumentException>(() => Conv2dKernels.Backward(wide, 1, new float[wide.InputLength], new float[wide.WeightLength], new float[wide.OutputLength], new float[wide.InputLength], new float[wide.WeightLength], [], ctx, Conv2dAlgorithm.Winograd));
        Assert.Contains("padding at most 2", e.Message);
        // 7x7 has no Winograd path; a 5x5 input gradient needs padding at most 4.
        Conv2dGeometry seven = Geometry(4, 9, 9, 4, 3, 1, kernel: 7);
        e = Assert.Throws<ArgumentException>(() => Conv2dKernels.Forward(seven, 1, new float[seven.InputLength], new float[seven.WeightLength], [], new float[seven.OutputLength], false, ctx, Conv2dAlgorithm.Winograd));
        Assert.Contains("3x3 or 5x5 kernel", e.Message);
        Conv2dGeometry fiveWide = Geometry(4, 9, 9, 4, 5, 1, kernel: 5);
        e = Assert.Throws<ArgumentException>(() => Conv2dKernels.Backward(fiveWide, 1, new float[fiveWide.InputLength], new float[fiveWide.WeightLength], new float[fiveWide.OutputLength], new float[fiveWide.InputLength], new float[fiveWide.WeightLength], [], ctx, Conv2dAlgorithm.Winograd));
        Assert.Contains("or 4 (5x5)", e.Message);
        Assert.False(Conv2dKernels.UsesWinogradForward(Geometry(3, 9, 9, 64, 1, 1), 16, Conv2dAlgorithm.Auto)); // not a measured shape
    }

    private void AssertClose(float[] expected, float[] actual, string what)
    {
        var (relativeL2, maxRelative, worst) = Errors(expected, actual);
        output.WriteLine($"{what}: relative L2 {relativeL2:E2}, max |error| / max |ref| {maxRelative:E2}");
        if (!(relativeL2 <= RelativeL2) || !(maxRelative <= MaxRelative))
            Assert.Fail($"{what}: relative L2 {relativeL2:E2} (bound {RelativeL2:E0}), max |error| / max |ref| {maxRelative:E2} (bound {MaxRelative:E0}); worst element {worst}: fast {actual[worst]:R}, reference {expected[worst]:R}");
    }

    private void Report(float[] expected, float[] actual, string what)
    {
        var (relativeL2, maxRelative, _) = Errors(expected, actual);
        output.WriteLine($"{what}: relative L2 {relativeL2:E2}, max |error| / max |ref| {maxRelative:E2}");
    }

    private static (double RelativeL2, double MaxRelative, int Worst) Errors(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        double diff2 = 0, ref2 = 0, maxDiff = 0, maxRef = 0;
        int worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = (double)actual[i] - expected[i];
            diff2 += d * d;
            ref2 += (double)expected[i] * expected[i];
            if (!(Math.Abs(d) <= maxDiff)) { maxDiff = Math.Abs(d); worst = i; }
            maxRef = Math.Max(maxRef, Math.Abs(expected[i]));
        }
        return (Math.Sqrt(diff2 / Math.Max(ref2, 1e-300)), maxDiff / Math.Max(maxRef, 1e-300), worst);
    }

    private static float[] Normal(Random rng, int length, double sigma)
    {
        var x = new float[length];
        for (int i = 0; i < length; i++)
            x[i] = (float)(sigma * Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        return x;
    }

    /// <summary>max(0, x); with <paramref name="keepSign"/>, x where a fresh coin says the unit was active, else 0.</summary>
    private static float[] Relu(float[] x, bool keepSign = false)
    {
        var rng = new Random(11);
        for (int i = 0; i < x.Length; i++)
            x[i] = keepSign ? (rng.Next(2) == 0 ? 0f : x[i]) : Math.Max(0f, x[i]);
        return x;
    }
}
