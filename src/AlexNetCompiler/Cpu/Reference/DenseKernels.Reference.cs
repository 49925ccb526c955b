namespace AlexNetCompiler.Cpu;

/// <summary>
/// Dense (fully connected, torch.nn.Linear), the specification: output = input * weight^T + bias.
/// Accumulates in double.
/// </summary>
public static partial class DenseKernels
{
    /// <summary>input [N, IN], weight [OUT, IN], bias [OUT] or empty, output [N, OUT]; max(0, .) when relu.</summary>
    public static void ForwardReference(int batch, int inFeatures, int outFeatures, ReadOnlySpan<float> input, ReadOnlySpan<float> weight,
        ReadOnlySpan<float> bias, Span<float> output, bool relu)
    {
        ThrowIfShapesMismatch(batch, inFeatures, outFeatures, input.Length, weight.Length, bias.Length, output.Length, nameof(output));
        for (int n = 0; n < batch; n++)
        {
            for (int o = 0; o < outFeatures; o++)
            {
                double sum = bias.IsEmpty ? 0.0 : bias[o];
                for (int i = 0; i < inFeatures; i++)
                    sum += (double)input[n * inFeatures + i] * weight[o * inFeatures + i];
                float value = (float)sum;
                if (relu && value < 0f) value = 0f; // NaN stays NaN as in torch.relu
                output[n * outFeatures + o] = value;
            }
        }
    }

    /// <summary>
    /// dOutput [N, OUT] (any ReLU mask already applied). Overwrites
    /// dInput [N, IN] = dOutput * weight (skipped when empty),
    /// dWeight [OUT, IN] = dOutput^T * input,
    /// dBias [OUT] = column sums of dOutput (skipped when empty).
    /// </summary>
    public static void BackwardReference(int batch, int inFeatures, int outFeatures, ReadOnlySpan<float> input, ReadOnlySpan<float> weight,
        ReadOnlySpan<float> dOutput, Span<float> dInput, Span<float> dWeight, Span<float> dBias)
    {
        ThrowIfShapesMismatch(batch, inFeatures, outFeatures, input.Length, weight.Length, dBias.Length, dOutput.Length, nameof(dOutput));
        if (!dInput.IsEmpty && dInput.Length != batch * inFeatures)
            throw new ArgumentException($"Dense backward: dInput has {dInput.Length} floats, expected {batch} x {inFeatures}.", nameof(dInput));
        if (dWeight.Length != outFeatures * inFeatures)
            throw new ArgumentException($"Dense backward: dWeight has {dWeight.Length} floats, expected {outFeatures} x {inFeatures}.", nameof(dWeight));

        if (!dInput.IsEmpty)
        {
            for (int n = 0; n < batch; n++)
            {
                for (int i = 0; i < inFeatures; i++)
                {
                    double sum = 0;
                    for (int o = 0; o < outFeatures; o++)
                        sum += (double)dOutput[n * outFeatures + o] * weight[o * inFeatures + i];
                    dInput[n * inFeatures + i] = (float)sum;
                }
            }
        }

        for (int o = 0; o < outFeatures; o++)
        {
            for (int i = 0; i < inFeatures; i++)
            {
                double sum = 0;
                for (int n = 0; n < batch; n++)
                    sum += (double)dOutput[n * outFeatures + o] * input[n * inFeatures + i];
                dWeight[o * inFeatures + i] = (float)sum;
            }
        }

        if (!dBias.IsEmpty)
        {
            for (int o = 0; o < outFeatures; o++)
            {
                double sum = 0;
                for (int n = 0; n < batch; n++)
                    sum += dOutput[n * outFeatures + o];
                dBias[o] = (float)sum;
            }
        }
    }

    /// <summary>Argument checks shared by the reference and fast kernels.</summary>
    internal static void ThrowIfShapesMismatch(int batch, int inFeatures, int outFeatures, int inputLength, int weightLength,
        int biasLength, int outputLength, string outputName)
    {
        if (batch < 0 || inFeatures <= 0 || outFeatures <= 0)
            throw new ArgumentException($"Dense: batch {batch}, in features {inFeatures} and out features {outFeatures} must be positive.");
        if (inputLength != batch * inFeatures)
            throw new ArgumentException($"Dense: input has {inputLength} floats, expected {batch} x {inFeatures}.");
        if (weightLength != outFeatures * inFeatures)
            throw new ArgumentException($"Dense: weight has {weightLength} floats, expected {outFeatures} x {inFeatures}.");
        if (biasLength != 0 && biasLength != outFeatures)
            throw new ArgumentException($"Dense: bias has {biasLength} floats, expected {outFeatures} or none.");
        if (outputLength != batch * outFeatures)
            throw new ArgumentException($"Dense: {outputName} has {outputLength} floats, expected {batch} x {outFeatures}.");
    }
}
