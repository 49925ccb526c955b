using AlexNetCompiler.Cpu;
using AlexNetCompiler.Training;

namespace AlexNetCompiler.Tests.Cpu;

public class DenseKernelsTests
{
    public static TheoryData<int, int, int> Shapes() => new()
    {
        { 1, 1, 1 }, { 1, 7, 33 }, { 3, 300, 65 }, { 17, 64, 7 }, { 5, 513, 40 }, { 2, 1000, 10 },
        // fc8 of AlexNet at a small batch: K = 4096 crosses 16 K blocks.
        { 2, 4096, 100 },
        // Whole 64-column strips and more than one 256-row block of summands in backward's streamed products,
        // at the smallest and the largest small batch.
        { 1, 192, 520 }, { 3, 128, 300 }, { Gemm.RowDotMaxM, 70, 260 },
        // Above the row-dot batch limit: the blocked GEMM with a transposed, packed weight.
        { 25, 300, 70 }, { 40, 17, 9 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Forward_matches_reference(int batch, int inFeatures, int outFeatures)
    {
        float[] input = KernelAssert.Random(batch * inFeatures, 31), weight = KernelAssert.Random(outFeatures * inFeatures, 32), bias = KernelAssert.Random(outFeatures, 33);
        foreach (bool relu in new[] { false, true })
        foreach (bool withBias in new[] { false, true })
        {
            float[] b = withBias ? bias : [];
            var expected = new float[batch * outFeatures];
            DenseKernels.ForwardReference(batch, inFeatures, outFeatures, input, weight, b, expected, relu);
            var magnitude = new float[expected.Length];
            DenseKernels.ForwardReference(batch, inFeatures, outFeatures, KernelAssert.Abs(input), KernelAssert.Abs(weight), KernelAssert.Abs(b), magnitude, false);
            // Blocked GEMM: one rounding per FMA in a K block, one per K block, one for the bias. Small batches
            // use row dot products: K/16 (or K/8) FMAs per lane, a horizontal sum (< 16 adds), a scalar tail
            // (< 16 products and adds) and the bias.
            int roundings = batch <= Gemm.RowDotMaxM
                ? inFeatures / 8 + 16 + 2 * 16 + 1
                : Math.Min(inFeatures, Gemm.KC) + (inFeatures + Gemm.KC - 1) / Gemm.KC + 1;
            foreach (int threads in new[] { 1, 2, 3 })
            {
                using var ctx = new CpuContext(threads);
                var actual = KernelAssert.Random(expected.Length, 34); // poisoned: must be overwritten
                DenseKernels.Forward(batch, inFeatures, outFeatures, input, weight, b, actual, relu, ctx);
                KernelAssert.WithinSummationBound(expected, actual, magnitude, roundings, $"dense {batch}x{inFeatures}->{outFeatures} relu={relu} bias={withBias} threads={threads}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Backward_matches_reference(int batch, int inFeatures, int outFeatures)
    {
        float[] input = KernelAssert.Random(batch * inFeatures, 41), weight = KernelAssert.Random(outFeatures * inFeatures, 42), dOutput = KernelAssert.Random(batch * outFeatures, 43);
        var dx = new float[input.Length]; var dw = new float[weight.Length]; var db = new float[outFeatures];
        DenseKernels.BackwardReference(batch, inFeatures, outFeatures, input, weight, dOutput, dx, dw, db);
        var dxMag = new float[input.Length]; var dwMag = new float[weight.Length]; var dbMag = new float[outFeatures];
        DenseKernels.BackwardReference(batch, inFeatures, outFeatures, KernelAssert.Abs(input), KernelAssert.Abs(weight), KernelAssert.Abs(dOutput), dxMag, dwMag, dbMag);
        foreach (int threads in new[] { 1, 2, 3 })
        {
            using var ctx = new CpuContext(threads);
            float[] dxFast = KernelAssert.Random(dx.Length, 44), dwFast = KernelAssert.Random(dw.Length, 45), dbFast = KernelAssert.Random(db.Length, 46);
            DenseKernels.Backward(batch, inFeatures, outFeatures, input, weight, dOutput, dxFast, dwFast, dbFast, ctx);
            string what = $"dense {batch}x{inFeatures}->{outFeatures} threads={threads}";
            KernelAssert.WithinSummationBound(dx, dxFast, dxMag, Math.Min(outFeatures, Gemm.KC) + (outFeatures + Gemm.KC - 1) / Gemm.KC, what + " dInput");
            KernelAssert.WithinSummationBound(dw, dwFast, dwMag, Math.Min(batch, Gemm.KC) + 1, what + " dWeight");
            KernelAssert.WithinSummationBound(db, dbFast, dbMag, batch, what + " dBias");

            float[] dwOnly = new float[dw.Length];
            DenseKernels.Backward(batch, inFeatures, outFeatures, input, weight, dOutput, Span<float>.Empty, dwOnly, Span<float>.Empty, ctx);
            Assert.Equal(dwFast, dwOnly);
        }
    }

    public static TheoryData<int, int, int> UpdateShapes() => new()
    {
        // Panels of 512 columns with a partial strip at the end (1000 = 15 strips + 40), two and a half 256-row blocks
        // with 2 rows past the last tile of 4 (602), a single row, the smallest and largest fused batches, and past
        // them the blocked GEMM followed by the separate update; six samples (a group of four in registers and two
        // more) over whole strips and a tile of four rows, then one of three.
        { 1, 1000, 602 }, { 3, 1000, 602 }, { Gemm.RowDotMaxM, 130, 300 }, { 2, 64, 1 }, { 5, 7, 10 }, { 25, 300, 70 },
        { 6, 200, 7 },
    };

    [Theory]
    [MemberData(nameof(UpdateShapes))]
    public void Backward_with_the_weight_update_gives_the_bits_of_backward_then_the_step(int batch, int inFeatures, int outFeatures)
    {
        float[] input = KernelAssert.Random(batch * inFeatures, 51), dOutput = KernelAssert.Random(batch * outFeatures, 53);
        float[] bias = KernelAssert.Random(outFeatures, 54);
        // The weight sits inside a larger parameter buffer, as in a network: [bias of another layer | weight | bias].
        int offset = 5, length = outFeatures * inFeatures;
        foreach (SgdVariant variant in new[] { SgdVariant.PyTorch, SgdVariant.Paper })
        foreach (bool withInputGradient in new[] { true, false })
        foreach (int threads in new[] { 1, 3 })
        {
            using var ctx = new CpuContext(threads);
            float[] parameters = KernelAssert.Random(offset + length + outFeatures, 52);
            var options = new SgdOptions(LearningRate: 0.05f, Momentum: 0.9f, WeightDecay: 1e-3f, Variant: variant);
            var separate = new Sgd(parameters.Length, options, ctx);
            var fused = new Sgd(parameters.Length, options, ctx);
            float[] separateParameters = parameters.ToArray(), fusedParameters = parameters.ToArray();
            var gradients = new float[parameters.Length];
            string what = $"{batch}x{inFeatures}->{outFeatures} {variant} dInput={withInputGradient} threads={threads}";
            // Two steps: the first sets the velocity (PyTorch) and the second uses it.
            for (int step = 0; step < 2; step++)
            {
                float[] dxSeparate = withInputGradient ? new float[input.Length] : [], dxFused = withInputGradient ? new float[input.Length] : [];
                DenseKernels.Backward(batch, inFeatures, outFeatures, input, separateParameters.AsSpan(offset, length), dOutput, dxSeparate,
                    gradients.AsSpan(offset, length), gradients.AsSpan(offset + length, outFeatures), ctx);
                separate.Step(separateParameters, gradients);

                float[] fusedGradients = new float[parameters.Length];
                DenseKernels.Backward(batch, inFeatures, outFeatures, input, fusedParameters.AsSpan(offset, length), dOutput, dxFused,
                    fusedGradients.AsSpan(offset, length), fusedGradients.AsSpan(offset + length, outFeatures), ctx,
                    weightUpdate: fused.UpdateOf(fusedParameters, offset, length));
                fused.Step(fusedParameters, fusedGradients, [new Range(offset, offset + length)]);

                Assert.True(dxSeparate.AsSpan().SequenceEqual(dxFused), $"{what} step {step}: dInput");
                Assert.True(separateParameters.AsSpan().SequenceEqual(fusedParameters), $"{what} step {step}: parameters");
                Assert.True(separate.Velocity.AsSpan().SequenceEqual(fused.Velocity), $"{what} step {step}: velocity");
                Assert.Equal(separate.StepCount, fused.StepCount);
            }
            // The step really moved the weights (a kernel that skipped the update would also match a skipped step).
            Assert.False(separateParameters.AsSpan(offset, length).SequenceEqual(parameters.AsSpan(offset, length)), what);
        }
    }

    [Fact]
    public void A_weight_update_of_another_slice_is_refused()
    {
        using var ctx = new CpuContext(1);
        float[] parameters = new float[20];
        var sgd = new Sgd(parameters.Length, new SgdOptions(), ctx);
        var e = Assert.Throws<ArgumentException>(() => DenseKernels.Backward(2, 3, 4, new float[6], parameters.AsSpan(0, 12), new float[8],
            new float[6], new float[12], new float[4], ctx, weightUpdate: sgd.UpdateOf(parameters, 1, 12)));
        Assert.Equal("weightUpdate", e.ParamName);
    }

    [Fact]
    public void Wrong_weight_length_names_the_argument()
    {
        using var ctx = new CpuContext(1);
        var e = Assert.Throws<ArgumentException>(() => DenseKernels.Forward(2, 3, 4, new float[6], new float[11], default, new float[8], false, ctx));
        Assert.Contains("weight", e.Message);
    }
}
