using AlexNetCompiler.Cpu;
using System.Runtime.Intrinsics.X86;

namespace AlexNetCompiler.Tests.Cpu;

/// <summary>The im2col + GEMM path (forced: Auto runs Winograd on some of these shapes, WinogradConvTests checks that path).</summary>
public class Conv2dKernelsTests
{
    /// <summary>(name, batch, C, H, W, OC, KH, KW, stride, padding, groups).</summary>
    public static IEnumerable<object[]> Shapes()
    {
        yield return ["3x3 pad 1", 2, 3, 11, 13, 5, 3, 3, 1, 1, 1];
        yield return ["rectangular 3x5 stride 2", 3, 4, 15, 17, 7, 3, 5, 2, 0, 1];
        yield return ["groups 2 pad 2", 2, 6, 9, 10, 8, 5, 5, 1, 2, 2];
        yield return ["groups 3 stride 3 pad 1", 1, 9, 16, 14, 6, 3, 3, 3, 1, 3];
        yield return ["1x1 direct", 3, 8, 7, 9, 10, 1, 1, 1, 0, 1];
        yield return ["1x1 direct groups 2", 1, 8, 7, 9, 10, 1, 1, 1, 0, 2];
        yield return ["1x1 stride 2", 2, 5, 9, 8, 4, 1, 1, 2, 0, 1];
        yield return ["conv1-like k11 s4", 2, 3, 39, 43, 8, 11, 11, 4, 0, 1];
        // Rows wide enough for the phases' permutes (16 stride-2 floats), with padding on both sides.
        yield return ["stride 2, wide rows", 2, 3, 7, 71, 4, 3, 3, 2, 1, 1];
        yield return ["kernel larger than input with padding", 2, 2, 3, 4, 3, 5, 5, 1, 2, 1];
        yield return ["wide channels, batch 1, groups 1", 1, 40, 12, 12, 70, 3, 3, 1, 1, 1];
        // Batch 1 with more output channels than positions: the product splits the channels over the threads, and the
        // columns are packed once, the threads sharing out the channels (K over two blocks, a ragged panel).
        yield return ["small plane, many channels, batch 1", 1, 30, 6, 6, 40, 3, 3, 1, 1, 1];
        yield return ["batch 5 odd", 5, 4, 6, 5, 6, 2, 3, 1, 1, 2];
        // Small output planes at larger batches: several samples per GEMM (Conv2dKernels.SamplesPerItem), blocks
        // that end short of the batch, groups, stride.
        yield return ["7x7 sample blocks", 9, 6, 7, 7, 8, 3, 3, 1, 1, 1];
        yield return ["5x5 sample blocks groups 2", 13, 8, 5, 5, 6, 3, 3, 1, 1, 2];
        yield return ["5x5 sample blocks stride 2", 7, 3, 9, 9, 4, 3, 3, 2, 1, 1];
        // The canonical AlexNet layers at batch 1 (227 input; conv2, conv4, conv5 grouped).
        yield return ["AlexNet conv1", 1, 3, 227, 227, 96, 11, 11, 4, 0, 1];
        yield return ["AlexNet conv2", 1, 96, 27, 27, 256, 5, 5, 1, 2, 2];
        yield return ["AlexNet conv3", 1, 256, 13, 13, 384, 3, 3, 1, 1, 1];
        yield return ["AlexNet conv4", 1, 384, 13, 13, 384, 3, 3, 1, 1, 2];
        yield return ["AlexNet conv5", 1, 384, 13, 13, 256, 3, 3, 1, 1, 2];
        // torchvision's conv1: stride 4 with padding 2 on both sides of the row.
        yield return ["torchvision conv1", 1, 3, 224, 224, 64, 11, 11, 4, 2, 1];
    }

    private static Conv2dGeometry Geometry(int c, int h, int w, int oc, int kh, int kw, int s, int p, int g) =>
        new(c, h, w, oc, (h + 2 * p - kh) / s + 1, (w + 2 * p - kw) / s + 1, kh, kw, s, s, p, p, g);

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Forward_matches_reference(string name, int batch, int c, int h, int w, int oc, int kh, int kw, int s, int p, int groups) =>
        CheckForward(name, batch, Geometry(c, h, w, oc, kh, kw, s, p, groups));

    /// <summary>(name, batch, C, H, W, OC, KH, KW, stride H, stride W, padding H, padding W): strides that differ per axis.</summary>
    public static IEnumerable<object[]> RectangularStrides()
    {
        yield return ["stride 2x1", 3, 3, 11, 9, 4, 5, 3, 2, 1, 2, 1];
        yield return ["stride 1x2", 2, 4, 9, 20, 5, 3, 3, 1, 2, 1, 0];
        yield return ["stride 3x1, wide rows", 2, 2, 13, 37, 3, 3, 3, 3, 1, 1, 1];
        yield return ["stride 2x3, padded", 2, 3, 12, 17, 4, 3, 5, 2, 3, 1, 2];
    }

    private static Conv2dGeometry Geometry(int c, int h, int w, int oc, int kh, int kw, int sh, int sw, int ph, int pw) =>
        new(c, h, w, oc, (h + 2 * ph - kh) / sh + 1, (w + 2 * pw - kw) / sw + 1, kh, kw, sh, sw, ph, pw, 1);

    [Theory]
    [MemberData(nameof(RectangularStrides))]
    public void Forward_with_per_axis_strides_matches_reference(string name, int batch, int c, int h, int w, int oc, int kh, int kw, int sh, int sw, int ph, int pw) =>
        CheckForward(name, batch, Geometry(c, h, w, oc, kh, kw, sh, sw, ph, pw));

    [Theory]
    [MemberData(nameof(RectangularStrides))]
    public void Backward_with_per_axis_strides_matches_reference(string name, int batch, int c, int h, int w, int oc, int kh, int kw, int sh, int sw, int ph, int pw) =>
        CheckBackward(name, batch, Geometry(c, h, w, oc, kh, kw, sh, sw, ph, pw));

    private static void CheckForward(string name, int batch, Conv2dGeometry g)
    {
        int c = g.InChannels, oc = g.OutChannels, kh = g.KernelHeight, kw = g.KernelWidth, groups = g.Groups;
        float[] input = KernelAssert.Random(batch * g.InputLength, 11), weight = KernelAssert.Random(g.WeightLength, 12, -0.2f, 0.2f);
        float[] bias = KernelAssert.Random(oc, 13);
        foreach (bool relu in new[] { false, true })
        {
            var expected = new float[batch * g.OutputLength];
            Conv2dKernels.ForwardReference(g, batch, input, weight, bias, expected, relu);
            // Sum of |terms| per output: the same convolution of absolute values.
            var magnitude = new float[expected.Length];
            Conv2dKernels.ForwardReference(g, batch, KernelAssert.Abs(input), KernelAssert.Abs(weight), KernelAssert.Abs(bias), magnitude, false);
            int k = c / groups * kh * kw;
            // One rounding per FMA in a K block, one per K block, one for the bias.
            int roundings = Math.Min(k, Gemm.KC) + (k + Gemm.KC - 1) / Gemm.KC + 1;
            foreach (int threads in new[] { 1, 2, 3 })
            {
                using var ctx = new CpuContext(threads);
                var actual = new float[expected.Length];
                Conv2dKernels.Forward(g, batch, input, weight, bias, actual, relu, ctx, Conv2dAlgorithm.Im2Col);
                KernelAssert.WithinSummationBound(expected, actual, magnitude, roundings, $"conv {name} forward relu={relu} threads={threads}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Backward_matches_reference(string name, int batch, int c, int h, int w, int oc, int kh, int kw, int s, int p, int groups) =>
        CheckBackward(name, batch, Geometry(c, h, w, oc, kh, kw, s, p, groups));

    private static void CheckBackward(string name, int batch, Conv2dGeometry g)
    {
        int oc = g.OutChannels, kh = g.KernelHeight, kw = g.KernelWidth, groups = g.Groups;
        float[] input = KernelAssert.Random(batch * g.InputLength, 21), weight = KernelAssert.Random(g.WeightLength, 22, -0.2f, 0.2f);
        float[] dOutput = KernelAssert.Random(batch * g.OutputLength, 23);
        var dInputRef = new float[input.Length];
        var dWeightRef = new float[weight.Length];
        var dBiasRef = new float[oc];
        Conv2dKernels.BackwardReference(g, batch, input, weight, dOutput, dInputRef, dWeightRef, dBiasRef);
        var dInputMag = new float[input.Length];
        var dWeightMag = new float[weight.Length];
        var dBiasMag = new float[oc];
        Conv2dKernels.BackwardReference(g, batch, KernelAssert.Abs(input), KernelAssert.Abs(weight), KernelAssert.Abs(dOutput), dInputMag, dWeightMag, dBiasMag);

        int positions = g.OutHeight * g.OutWidth, ocg = oc / groups;
        foreach (int threads in new[] { 1, 2, 3 })
        {
            using var ctx = new CpuContext(threads);
            // Poison the outputs: the kernel must overwrite, not accumulate.
            float[] dInput = KernelAssert.Random(input.Length, 99), dWeight = KernelAssert.Random(weight.Length, 98), dBias = KernelAssert.Random(oc, 97);
            Conv2dKernels.Backward(g, batch, input, weight, dOutput, dInput, dWeight, dBias, ctx, Conv2dAlgorithm.Im2Col);
            // dWeight: per item a GEMM over the P positions of its samples (several samples side by side for a small
            // plane) in K blocks of 256 (an FMA chain per block, one add per block into C), accumulated over the
            // items, then per-thread partials added in the reduction.
            int depth = Conv2dKernels.SamplesPerItem(g, batch, threads) * positions;
            int dwRoundings = Math.Min(depth, Gemm.KC) + batch * ((positions + Gemm.KC - 1) / Gemm.KC) + threads;
            KernelAssert.WithinSummationBound(dWeightRef, dWeight, dWeightMag, dwRoundings, $"conv {name} dWeight threads={threads}");
            // dInput: a GEMM over OC/G channels, then col2im adds up to KH*KW column entries.
            int dxRoundings = Math.Min(ocg, Gemm.KC) + (ocg + Gemm.KC - 1) / Gemm.KC + kh * kw;
            KernelAssert.WithinSummationBound(dInputRef, dInput, dInputMag, dxRoundings, $"conv {name} dInput threads={threads}");
            // dBias: float lanes of 16 / 32 summed per plane, then the planes in double.
            KernelAssert.WithinSummationBound(dBiasRef, dBias, dBiasMag, positions / 32 + 40, $"conv {name} dBias threads={threads}");

            // Without dInput and dBias (the first layer, a bias-free layer): dWeight unchanged.
            float[] dWeightOnly = new float[weight.Length];
            Conv2dKernels.Backward(g, batch, input, weight, dOutput, Span<float>.Empty, dWeightOnly, Span<float>.Empty, ctx, Conv2dAlgorithm.Im2Col);
            Assert.Equal(dWeight, dWeightOnly);
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Weights_packed_once_per_call_give_each_items_own_packing_bits(string name, int batch, int c, int h, int w, int oc, int kh, int kw, int s, int p, int groups)
    {
        // One thread runs the items in turn, each product packing its own weight; three threads run them in parallel
        // from the weights packed once per call (where there are items for every thread). Each output and input-gradient
        // element is the same sum either way, so the bits must agree.
        Conv2dGeometry g = Geometry(c, h, w, oc, kh, kw, s, p, groups);
        float[] input = KernelAssert.Random(batch * g.InputLength, 41), weight = KernelAssert.Random(g.WeightLength, 42, -0.5f, 0.5f);
        float[] bias = KernelAssert.Random(oc, 43), dOutput = KernelAssert.Random(batch * g.OutputLength, 44);
        (float[] Output, float[] DInput) Run(int threads)
        {
            using var ctx = new CpuContext(threads);
            float[] output = new float[batch * g.OutputLength], dInput = new float[input.Length];
            Conv2dKernels.Forward(g, batch, input, weight, bias, output, relu: true, ctx, Conv2dAlgorithm.Im2Col);
            Conv2dKernels.Backward(g, batch, input, weight, dOutput, dInput, new float[weight.Length], new float[oc], ctx, Conv2dAlgorithm.Im2Col);
            return (output, dInput);
        }
        var (oneOutput, oneDInput) = Run(1);
        var (threeOutput, threeDInput) = Run(3);
        Assert.True(oneOutput.AsSpan().SequenceEqual(threeOutput), $"conv {name} forward");
        Assert.True(oneDInput.AsSpan().SequenceEqual(threeDInput), $"conv {name} dInput");
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Column_panels_give_the_column_matrix_bits(string name, int batch, int c, int h, int w, int oc, int kh, int kw, int s, int p, int groups) =>
        CheckPanelsAgainstMatrix(name, batch, Geometry(c, h, w, oc, kh, kw, s, p, groups));

    [Theory]
    [MemberData(nameof(RectangularStrides))]
    public void Column_panels_give_the_column_matrix_bits_with_per_axis_strides(string name, int batch, int c, int h, int w, int oc, int kh, int kw, int sh, int sw, int ph, int pw) =>
        CheckPanelsAgainstMatrix(name, batch, Geometry(c, h, w, oc, kh, kw, sh, sw, ph, pw));

    private static void CheckPanelsAgainstMatrix(string name, int batch, Conv2dGeometry g)
    {
        // Slabs of packed panels against the whole column matrix: each output is the same dot product in the same order,
        // so the bits must agree, with and without bias and ReLU, on one thread and on three.
        float[] input = KernelAssert.Random(batch * g.InputLength, 51), weight = KernelAssert.Random(g.WeightLength, 52, -0.5f, 0.5f);
        float[] bias = KernelAssert.Random(g.OutChannels, 53);
        foreach (int threads in new[] { 1, 3 })
        {
            using var matrix = new CpuContext(threads) { ForwardColumns = ColumnLayout.Matrix };
            using var panels = new CpuContext(threads) { ForwardColumns = ColumnLayout.Panels };
            bool direct = g.KernelHeight == 1 && g.KernelWidth == 1 && g.StrideHeight == 1 && g.StrideWidth == 1 && g.PaddingHeight == 0 && g.PaddingWidth == 0;
            bool blocks = Conv2dKernels.SamplesPerItem(g, batch, threads) > 1;
            Assert.False(Conv2dKernels.UsesColumnPanels(g, batch, matrix), $"conv {name}: the matrix context must not take panels");
            Assert.Equal(!direct && !blocks, Conv2dKernels.UsesColumnPanels(g, batch, panels));
            foreach (bool relu in new[] { false, true })
            {
                float[] expected = new float[batch * g.OutputLength], actual = KernelAssert.Random(expected.Length, 54);
                Conv2dKernels.Forward(g, batch, input, weight, relu ? bias : [], expected, relu, matrix, Conv2dAlgorithm.Im2Col);
                Conv2dKernels.Forward(g, batch, input, weight, relu ? bias : [], actual, relu, panels, Conv2dAlgorithm.Im2Col);
                Assert.True(expected.AsSpan().SequenceEqual(actual), $"conv {name} threads={threads} relu={relu}");
            }
        }
    }

    /// <summary>(name, batch, C, H, W, OC, KH, KW, stride H, stride W, padding H, padding W, groups): shapes the channel lanes take.</summary>
    public static IEnumerable<object[]> ChannelLaneShapes()
    {
        // torchvision's conv1 at a third of its width: K = 363 over two blocks of KC, padding on every side.
        yield return ["conv1-like, 64 channels, padded", 1, 3, 40, 75, 64, 11, 11, 4, 4, 2, 2, 1];
        // The canonical conv1's 96 channels (two blocks of 48, tiles of 8 positions), no padding; at batch 1 the plane
        // (7 x 10 positions) splits into parts over the threads, the second one starting below the first input row.
        yield return ["conv1-like, 96 channels", 1, 3, 35, 47, 96, 11, 11, 4, 4, 0, 0, 1];
        // 128 channels (two blocks of 64), stride 2 by 3, a plane of 9 x 9: no whole number of strips, tiles or transposes.
        yield return ["stride 2x3, 128 channels", 2, 5, 17, 26, 128, 3, 5, 2, 3, 1, 2, 1];
        // Groups of 48 channels, stride 1, K = 4 x 9 = 36: one short block of K.
        yield return ["groups 2, stride 1", 2, 8, 9, 11, 96, 3, 3, 1, 1, 1, 1, 2];
        // A single output position, and a kernel as large as the padded input.
        yield return ["one position", 2, 2, 5, 5, 64, 7, 7, 2, 2, 1, 1, 1];
        // Rows too many for one padded copy (LanePaddedFloats: 3 x 301 x 302 floats): on one thread the plane still splits in two.
        yield return ["parts by size", 1, 3, 300, 300, 64, 3, 3, 2, 2, 1, 1, 1];
    }

    private static bool LanesSupported => Avx512F.IsSupported && Gemm.BestKernel == GemmKernel.Vector512;

    [SkippableTheory]
    [MemberData(nameof(ChannelLaneShapes))]
    public void Channel_lanes_give_the_column_matrix_bits(string name, int batch, int c, int h, int w, int oc, int kh, int kw, int sh, int sw, int ph, int pw, int groups)
    {
        // The output channels in the vector lanes against the whole column matrix: each output is the same sums in the
        // same order (FMAs by block of KC, the blocks added, then bias and ReLU), so the bits must agree, with and
        // without bias and ReLU in all four combinations, on one thread and on three; with a weight cache, on its
        // first call and when it is reused.
        Skip.IfNot(LanesSupported, "The channel lanes run on AVX-512 only.");
        var g = new Conv2dGeometry(c, h, w, oc, (h + 2 * ph - kh) / sh + 1, (w + 2 * pw - kw) / sw + 1, kh, kw, sh, sw, ph, pw, groups);
        float[] input = KernelAssert.Random(batch * g.InputLength, 71), weight = KernelAssert.Random(g.WeightLength, 72, -0.5f, 0.5f);
        float[] bias = KernelAssert.Random(g.OutChannels, 73);
        foreach (int threads in new[] { 1, 3 })
        {
            using var matrix = new CpuContext(threads) { ForwardColumns = ColumnLayout.Matrix };
            using var lanes = new CpuContext(threads) { ForwardColumns = ColumnLayout.ChannelLanes };
            Assert.True(Conv2dKernels.UsesChannelLanes(g, batch, lanes), $"conv {name}: the lanes must take this shape");
            Assert.False(Conv2dKernels.UsesChannelLanes(g, batch, matrix), $"conv {name}: the matrix context must not take the lanes");
            var cache = new Conv2dWeightCache();
            foreach (bool withBias in new[] { false, true })
                foreach (bool relu in new[] { false, true })
                    foreach (Conv2dWeightCache? weightCache in new[] { null, cache })
                    {
                        float[] expected = new float[batch * g.OutputLength], actual = KernelAssert.Random(expected.Length, 74);
                        Conv2dKernels.Forward(g, batch, input, weight, withBias ? bias : [], expected, relu, matrix, Conv2dAlgorithm.Im2Col);
                        Conv2dKernels.Forward(g, batch, input, weight, withBias ? bias : [], actual, relu, lanes, Conv2dAlgorithm.Im2Col, weightCache: weightCache);
                        Assert.True(expected.AsSpan().SequenceEqual(actual), $"conv {name} threads={threads} bias={withBias} relu={relu} cache={weightCache != null}");
                    }
            Assert.Equal(1, cache.Preparations);
        }
    }

    [SkippableFact]
    public void Auto_takes_the_channel_lanes_for_strided_layers_of_whole_channel_blocks()
    {
        using var ctx = new CpuContext(2);
        var torchvisionConv1 = new Conv2dGeometry(3, 224, 224, 64, 55, 55, 11, 11, 4, 4, 2, 2, 1);
        var canonicalConv1 = new Conv2dGeometry(3, 227, 227, 96, 55, 55, 11, 11, 4, 4, 0, 0, 1);
        // Not a multiple of 48 or 64 channels, or stride 1 under Auto: panels, or the column matrix; on any machine.
        Assert.False(Conv2dKernels.UsesChannelLanes(new Conv2dGeometry(3, 224, 224, 40, 55, 55, 11, 11, 4, 4, 2, 2, 1), 1, ctx));
        Assert.False(Conv2dKernels.UsesChannelLanes(new Conv2dGeometry(192, 13, 13, 384, 13, 13, 3, 3, 1, 1, 1, 1, 1), 1, ctx));
        using var panels = new CpuContext(2) { ForwardColumns = ColumnLayout.Panels };
        Assert.False(Conv2dKernels.UsesChannelLanes(torchvisionConv1, 1, panels));
        Skip.IfNot(LanesSupported, "The channel lanes run on AVX-512 only.");
        Assert.True(Conv2dKernels.UsesChannelLanes(torchvisionConv1, 1, ctx));
        Assert.True(Conv2dKernels.UsesChannelLanes(canonicalConv1, 16, ctx));
    }

    /// <summary>(C, H, W, KH, KW, stride H, stride W, padding H, padding W).</summary>
    public static IEnumerable<object[]> PanelGeometries()
    {
        yield return [3, 39, 43, 11, 11, 4, 4, 2, 2]; // K = 363 over two blocks of rows, padding on every side
        yield return [2, 15, 17, 3, 5, 2, 3, 0, 2];
        yield return [4, 9, 20, 3, 3, 1, 1, 1, 1];    // stride 1: one phase
        yield return [1, 7, 7, 5, 2, 1, 3, 2, 0];     // a kernel narrower than its stride
        // Rows wide enough for the phases' permutes: conv1's 227 at stride 4, 71 at stride 2 with padding.
        yield return [3, 15, 227, 11, 11, 4, 4, 0, 0];
        yield return [2, 5, 71, 3, 3, 2, 2, 1, 1];
    }

    [Theory]
    [MemberData(nameof(PanelGeometries))]
    public unsafe void Im2col_panels_are_the_packed_columns_of_the_matrix(int c, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw)
    {
        // Expected: the whole column matrix by the scalar im2col, then the slab's columns packed by Gemm.PackBRows.
        // Slabs at the start, across output rows in the middle, one position, and a ragged end; every float of the
        // packed slab must be written (NaN poison), the padding lanes with zeros.
        var g = new Conv2dGeometry(c, h, w, 1, (h + 2 * ph - kh) / sh + 1, (w + 2 * pw - kw) / sw + 1, kh, kw, sh, sw, ph, pw, 1);
        int positions = g.OutHeight * g.OutWidth, depth = c * kh * kw;
        float[] input = KernelAssert.Random(g.InputLength, 61);
        float[] columns = new float[depth * positions];
        fixed (float* pIn = input, pColumns = columns) Conv2dKernels.Im2ColScalar(g, c, pIn, pColumns, positions);
        int[][] slabs = [[0, Math.Min(64, positions)], [positions / 3, Math.Min(45, positions - positions / 3)], [positions - 1, 1], [5, positions - 5]];
        foreach (int[] slab in slabs)
        {
            int first = slab[0], count = slab[1];
            long length = Gemm.PackedBLength(count, depth);
            float[] expected = new float[length], actual = new float[length];
            Array.Fill(actual, float.NaN);
            fixed (float* pIn = input, pColumns = columns, pExpected = expected, pActual = actual)
            {
                Gemm.PackBRows(count, depth, 0, depth, pColumns + first, positions, pExpected);
                // The split rows' buffer is exactly as long as PanelPhaseRowsLength says: NaN past it must stay.
                long phaseLength = Conv2dKernels.PanelPhaseRowsLength(g, first, count);
                float[] phases = new float[phaseLength + 16];
                Array.Fill(phases, float.NaN, (int)phaseLength, 16);
                fixed (float* pPhases = phases) Conv2dKernels.Im2ColPanels(g, c, pIn, first, count, pActual, pPhases);
                Assert.All(phases.AsSpan((int)phaseLength).ToArray(), value => Assert.True(float.IsNaN(value), "written past the split rows"));
            }
            Assert.True(expected.AsSpan().SequenceEqual(actual), $"slab of {count} from {first} of {positions}");
        }
    }

    [Fact]
    public unsafe void Im2col_panels_refuse_positions_outside_the_output()
    {
        var g = new Conv2dGeometry(1, 8, 8, 1, 6, 6, 3, 3, 1, 1, 0, 0, 1);
        float[] input = new float[g.InputLength], packed = new float[Gemm.PackedBLength(36, 9)];
        var error = Assert.Throws<ArgumentOutOfRangeException>(() =>
        {
            fixed (float* pIn = input, pPacked = packed) Conv2dKernels.Im2ColPanels(g, 1, pIn, 30, 7, pPacked, null);
        });
        Assert.Contains("30 to 37", error.Message);
    }

    [Fact]
    public void Strided_convolutions_take_column_panels_and_the_others_the_matrix()
    {
        // Where the panels would run; with AVX-512, Auto runs the channel lanes there instead (the test above).
        using var ctx = new CpuContext(2);
        var torchvisionConv1 = new Conv2dGeometry(3, 224, 224, 64, 55, 55, 11, 11, 4, 4, 2, 2, 1);
        var canonicalConv1 = new Conv2dGeometry(3, 227, 227, 96, 55, 55, 11, 11, 4, 4, 0, 0, 1);
        var torchvisionConv3 = new Conv2dGeometry(192, 13, 13, 384, 13, 13, 3, 3, 1, 1, 1, 1, 1);
        Assert.True(Conv2dKernels.UsesColumnPanels(torchvisionConv1, 1, ctx));
        Assert.True(Conv2dKernels.UsesColumnPanels(torchvisionConv1, 16, ctx));
        Assert.True(Conv2dKernels.UsesColumnPanels(canonicalConv1, 16, ctx));
        Assert.False(Conv2dKernels.UsesColumnPanels(torchvisionConv3, 1, ctx));
        using var matrix = new CpuContext(2) { ForwardColumns = ColumnLayout.Matrix };
        Assert.False(Conv2dKernels.UsesColumnPanels(torchvisionConv1, 16, matrix));
        // Slabs are whole panels within 512 KiB of packed columns: conv1's 3025 positions at a depth of 363 (11 panels
        // fit) take nine slabs of 352, the last one short; 400 positions take two of 224 rather than 352 and 48.
        Assert.Equal(352, Conv2dKernels.SlabPositions(363, 3025));
        Assert.Equal(224, Conv2dKernels.SlabPositions(363, 400));
        Assert.Equal(Gemm.NR, Conv2dKernels.SlabPositions(100_000, 3025));
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Vector_im2col_and_col2im_equal_the_scalar_ones(string name, int batch, int c, int h, int w, int oc, int kh, int kw, int s, int p, int groups)
    {
        _ = (name, batch);
        CheckIm2ColAgainstScalar(Geometry(c, h, w, oc, kh, kw, s, p, groups));
    }

    [Theory]
    [MemberData(nameof(RectangularStrides))]
    public void Vector_im2col_and_col2im_equal_the_scalar_ones_with_per_axis_strides(string name, int batch, int c, int h, int w, int oc, int kh, int kw, int sh, int sw, int ph, int pw)
    {
        _ = (name, batch);
        CheckIm2ColAgainstScalar(Geometry(c, h, w, oc, kh, kw, sh, sw, ph, pw));
    }

    private static unsafe void CheckIm2ColAgainstScalar(Conv2dGeometry g)
    {
        // The masked AVX-512 paths (column stride 1) and the phased copies (column strides above 1) against the
        // scalar loops, with a row stride wider than one sample's columns, as a block of samples has. No arithmetic in
        // im2col; col2im adds the same entries in the same order: both must be bit-identical.
        int channels = g.InChannels / g.Groups, positions = g.OutHeight * g.OutWidth, rows = channels * g.KernelHeight * g.KernelWidth;
        long rowStride = positions + 19;
        float[] input = KernelAssert.Random(channels * g.InHeight * g.InWidth, 31);
        float[] vector = new float[rows * rowStride], scalar = new float[rows * rowStride];
        Array.Fill(vector, float.NaN); // entries between one row's columns and the next row stay untouched
        Array.Fill(scalar, float.NaN);
        float[] columns = KernelAssert.Random(rows * (int)rowStride, 32);
        float[] dInputVector = KernelAssert.Random(input.Length, 33), dInputScalar = new float[input.Length];
        fixed (float* pIn = input, pVector = vector, pScalar = scalar, pColumns = columns, pDxVector = dInputVector, pDxScalar = dInputScalar)
        {
            Conv2dKernels.Im2Col(g, channels, pIn, pVector, rowStride);
            Conv2dKernels.Im2ColScalar(g, channels, pIn, pScalar, rowStride);
            Conv2dKernels.Col2Im(g, channels, pColumns, rowStride, pDxVector);
            Conv2dKernels.Col2ImScalar(g, channels, pColumns, rowStride, pDxScalar);
        }
        Assert.Equal(scalar, vector);
        Assert.Equal(dInputScalar, dInputVector);
        Assert.Contains(vector, v => v != 0 && !float.IsNaN(v));
    }

    [Fact]
    public void Small_planes_put_several_samples_in_one_item_and_large_planes_or_batch_1_do_not()
    {
        // FashionNet's conv3 (7x7 output) at batch 64: about 256 columns per GEMM, items left for both threads.
        var fashionConv3 = Geometry(64, 7, 7, 128, 3, 3, 1, 1, 1);
        Assert.Equal(6, Conv2dKernels.SamplesPerItem(fashionConv3, 64, 2));
        Assert.Equal(1, Conv2dKernels.SamplesPerItem(fashionConv3, 1, 2));
        // Too few samples for two items per thread: fewer samples per item.
        Assert.Equal(2, Conv2dKernels.SamplesPerItem(fashionConv3, 9, 2));
        // 13x13 (AlexNet's conv3-5) and a direct 1x1 convolution keep one sample per item.
        Assert.Equal(1, Conv2dKernels.SamplesPerItem(Geometry(256, 13, 13, 384, 3, 3, 1, 1, 1), 64, 2));
        Assert.Equal(1, Conv2dKernels.SamplesPerItem(Geometry(8, 7, 9, 10, 1, 1, 1, 0, 1), 64, 2));
        // The test shapes above do run blocks.
        Assert.True(Conv2dKernels.SamplesPerItem(Geometry(6, 7, 7, 8, 3, 3, 1, 1, 1), 9, 2) > 1);
        Assert.True(Conv2dKernels.SamplesPerItem(Geometry(8, 5, 5, 6, 3, 3, 1, 1, 2), 13, 3) > 1);
        Assert.True(Conv2dKernels.SamplesPerItem(Geometry(3, 9, 9, 4, 3, 3, 2, 1, 1), 7, 2) > 1);
    }

    [Fact]
    public void Mismatched_lengths_name_the_argument()
    {
        Conv2dGeometry g = Geometry(3, 8, 8, 4, 3, 3, 1, 1, 1);
        using var ctx = new CpuContext(1);
        var e = Assert.Throws<ArgumentException>(() => Conv2dKernels.Forward(g, 2, new float[g.InputLength * 2], new float[g.WeightLength - 1], default, new float[g.OutputLength * 2], false, ctx));
        Assert.Contains("weight", e.Message);
        var wrongOut = g with { OutHeight = 7 };
        e = Assert.Throws<ArgumentException>(() => Conv2dKernels.Forward(wrongOut, 1, new float[g.InputLength], new float[g.WeightLength], default, new float[wrongOut.OutputLength], false, ctx));
        Assert.Contains("expected 8x8", e.Message);
    }

    [Fact]
    public void A_kernel_wider_than_the_padded_input_is_refused()
    {
        // Width 2, kernel 3, stride 2, no padding: division toward zero would give one output column, which
        // PyTorch's floor refuses; no window fits, so the kernels refuse it too instead of reading a wrong phase.
        var g = new Conv2dGeometry(1, 4, 2, 1, 4, 1, 1, 3, 1, 2, 0, 0, 1);
        using var ctx = new CpuContext(1);
        var e = Assert.Throws<ArgumentException>(() => Conv2dKernels.Forward(g, 1, new float[g.InputLength], new float[g.WeightLength], default, new float[g.OutputLength], false, ctx));
        Assert.Contains("larger than the padded input", e.Message);
    }
}
