using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using AlexNetCompiler.Training;

namespace AlexNetCompiler.Cpu;

/// <summary>
/// Fast fully connected layer: every product is one GEMM spread over the threads (row dot products in the forward
/// pass and streamed products in backward at a small batch, the blocked GEMM otherwise), bias and ReLU fused into
/// the forward product's epilogue.
/// </summary>
public static unsafe partial class DenseKernels
{
    public static void Forward(int batch, int inFeatures, int outFeatures, ReadOnlySpan<float> input, ReadOnlySpan<float> weight,
        ReadOnlySpan<float> bias, Span<float> output, bool relu, CpuContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        CheckDenseShapes(batch, inFeatures, outFeatures, input.Length, weight.Length, bias.Length, output.Length, nameof(output));
        fixed (float* pIn = input, pW = weight, pB = bias, pOut = output)
        {
            // output[N, OUT] = input[N, IN] * weight[OUT, IN]^T + bias[OUT], ReLU
            var epilogue = new GemmEpilogue(null, bias.IsEmpty ? null : pB, relu);
            if (batch <= Gemm.RowDotMaxM)
            {
                // Few samples: row-by-row dot products stream the weights once without packing them.
                Gemm.MultiplyRowsByRows(batch, outFeatures, inFeatures, pIn, inFeatures, pW, inFeatures, pOut, outFeatures, epilogue, ctx);
                return;
            }
            Gemm.Multiply(batch, outFeatures, inFeatures, pIn, inFeatures, false, pW, inFeatures, true, pOut, outFeatures,
                false, epilogue, ctx);
        }
    }

    /// <summary>
    /// dInput, dWeight and dBias of a dense layer. With <paramref name="weightUpdate"/> (a training step's update of this
    /// layer's weight, <see cref="Sgd.UpdateOf"/>), the weight is also updated, after dInput has been computed from its
    /// old values; at a small batch the update runs in the same pass and dWeight is left untouched, otherwise dWeight is
    /// computed first and then applied.
    /// </summary>
    public static void Backward(int batch, int inFeatures, int outFeatures, ReadOnlySpan<float> input, ReadOnlySpan<float> weight,
        ReadOnlySpan<float> dOutput, Span<float> dInput, Span<float> dWeight, Span<float> dBias, CpuContext ctx,
        SgdSliceUpdate? weightUpdate = null)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        CheckDenseShapes(batch, inFeatures, outFeatures, input.Length, weight.Length, dBias.Length, dOutput.Length, nameof(dOutput));
        if (dWeight.Length != (long)outFeatures * inFeatures)
            throw new ArgumentException($"Dense backward: dWeight has {dWeight.Length} floats, expected {(long)outFeatures * inFeatures} ([{outFeatures}, {inFeatures}]).", nameof(dWeight));
        if (!dInput.IsEmpty && dInput.Length != (long)batch * inFeatures)
            throw new ArgumentException($"Dense backward: dInput has {dInput.Length} floats, expected {(long)batch * inFeatures} ([{batch}, {inFeatures}]) or none.", nameof(dInput));
        if (weightUpdate is { } update &&
            (update.Length != weight.Length || !Unsafe.AreSame(ref MemoryMarshal.GetReference(update.Parameters), ref MemoryMarshal.GetReference(weight))))
            throw new ArgumentException("Dense backward: weightUpdate must be the update of the weight passed in (the same slice of the same parameters).", nameof(weightUpdate));
        fixed (float* pIn = input, pW = weight, pDy = dOutput, pDx = dInput, pDw = dWeight, pDb = dBias)
        {
            if (weightUpdate is { } fused && UseSmallBatchBackward(batch))
            {
                fixed (float* pV = fused.Velocity)
                    BackwardAndUpdateSmallBatch(batch, inFeatures, outFeatures, pIn, pDy, dInput.IsEmpty ? null : pDx, pW, pV, fused.Rule, ctx);
            }
            else if (UseSmallBatchBackward(batch))
            {
                if (!dInput.IsEmpty) BackwardInputSmallBatch(batch, inFeatures, outFeatures, pDy, pW, pDx, ctx);
                BackwardWeightSmallBatch(batch, inFeatures, outFeatures, pIn, pDy, pDw, ctx);
            }
            else
            {
                // dInput[N, IN] = dY[N, OUT] * W[OUT, IN]
                if (!dInput.IsEmpty)
                    Gemm.Multiply(batch, inFeatures, outFeatures, pDy, outFeatures, false, pW, inFeatures, false, pDx, inFeatures,
                        false, GemmEpilogue.None, ctx);
                // dWeight[OUT, IN] = dY[N, OUT]^T * X[N, IN]
                Gemm.Multiply(outFeatures, inFeatures, batch, pDy, outFeatures, true, pIn, inFeatures, false, pDw, inFeatures,
                    false, GemmEpilogue.None, ctx);
            }
            if (weightUpdate is { } separate && !UseSmallBatchBackward(batch))
            {
                fixed (float* pV = separate.Velocity) separate.Rule.Apply(pW, pDw, pV, weight.Length, ctx);
            }
            // dBias[OUT] = sum over the batch of dY
            if (!dBias.IsEmpty)
            {
                new Span<float>(pDb, outFeatures).Clear();
                for (int n = 0; n < batch; n++) SimdSpan.AddInPlace(pDb, pDy + (long)n * outFeatures, outFeatures);
            }
        }
    }

    private static void CheckDenseShapes(int batch, int inFeatures, int outFeatures, int inputLength, int weightLength, int biasLength, int outputLength, string outputName)
    {
        if (batch < 0) throw new ArgumentOutOfRangeException(nameof(batch), batch, "Dense: batch must not be negative.");
        if (inFeatures < 1 || outFeatures < 1)
            throw new ArgumentException($"Dense: feature counts must be positive (in {inFeatures}, out {outFeatures}).", nameof(inFeatures));
        if (inputLength != (long)batch * inFeatures)
            throw new ArgumentException($"Dense: input has {inputLength} floats, expected {(long)batch * inFeatures} ([{batch}, {inFeatures}]).", "input");
        if (weightLength != (long)outFeatures * inFeatures)
            throw new ArgumentException($"Dense: weight has {weightLength} floats, expected {(long)outFeatures * inFeatures} ([{outFeatures}, {inFeatures}]).", "weight");
        if (biasLength != 0 && biasLength != outFeatures)
            throw new ArgumentException($"Dense: bias has {biasLength} floats, expected {outFeatures} or none.", "bias");
        if (outputLength != (long)batch * outFeatures)
            throw new ArgumentException($"Dense: {outputName} has {outputLength} floats, expected {(long)batch * outFeatures} ([{batch}, {outFeatures}]).", outputName);
    }
}
