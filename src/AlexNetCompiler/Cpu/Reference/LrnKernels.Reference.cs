namespace AlexNetCompiler.Cpu;

/// <summary>
/// Cross-channel local response normalisation (Krizhevsky et al. 2012, section 3.3), the specification:
///   scale_c = k + alpha * sum_{c' in window(c)} a_c'^2,   b_c = a_c * scale_c^(-beta)
/// with window(c) = [c - size/2, c + (size-1)/2] clipped to [0, C) (integer division; the same window
/// as torch.nn.LocalResponseNorm, whose alpha is ours times size).
/// </summary>
public static partial class LrnKernels
{
    /// <summary>input/output [N, C, H, W]; scale (same length, or empty in inference) receives scale_c.</summary>
    public static void ForwardReference(in LrnGeometry g, int batch, ReadOnlySpan<float> input, Span<float> output, Span<float> scale)
    {
        ThrowIfShapesMismatch(g, batch, input.Length, output.Length, nameof(output));
        if (!scale.IsEmpty && scale.Length != input.Length)
            throw new ArgumentException($"LRN: scale has {scale.Length} floats, expected {input.Length} or none.", nameof(scale));
        int plane = g.Height * g.Width;
        int before = g.Size / 2, after = (g.Size - 1) / 2;
        for (int n = 0; n < batch; n++)
        {
            for (int c = 0; c < g.Channels; c++)
            {
                int first = Math.Max(0, c - before), last = Math.Min(g.Channels - 1, c + after);
                for (int p = 0; p < plane; p++)
                {
                    double sumSquares = 0;
                    for (int cc = first; cc <= last; cc++)
                    {
                        double a = input[(n * g.Channels + cc) * plane + p];
                        sumSquares += a * a;
                    }
                    double s = g.K + g.Alpha * sumSquares;
                    int at = (n * g.Channels + c) * plane + p;
                    output[at] = (float)(input[at] * Math.Pow(s, -g.Beta));
                    if (!scale.IsEmpty) scale[at] = (float)s;
                }
            }
        }
    }

    /// <summary>
    /// Overwrites dInput [N, C, H, W]. With b_c = a_c * s_c^(-beta):
    ///   dL/da_j = dOut_j * s_j^(-beta) - 2 * alpha * beta * a_j * sum_{c: j in window(c)} dOut_c * b_c / s_c
    /// where j in window(c) exactly when c in [j - (size-1)/2, j + size/2].
    /// </summary>
    public static void BackwardReference(in LrnGeometry g, int batch, ReadOnlySpan<float> input, ReadOnlySpan<float> output,
        ReadOnlySpan<float> scale, ReadOnlySpan<float> dOutput, Span<float> dInput)
    {
        ThrowIfShapesMismatch(g, batch, input.Length, output.Length, nameof(output));
        if (scale.Length != input.Length || dOutput.Length != input.Length || dInput.Length != input.Length)
            throw new ArgumentException($"LRN backward: scale ({scale.Length}), dOutput ({dOutput.Length}) and dInput ({dInput.Length}) must each have {input.Length} floats.");
        int plane = g.Height * g.Width;
        int before = g.Size / 2, after = (g.Size - 1) / 2;
        for (int n = 0; n < batch; n++)
        {
            for (int j = 0; j < g.Channels; j++)
            {
                int first = Math.Max(0, j - after), last = Math.Min(g.Channels - 1, j + before);
                for (int p = 0; p < plane; p++)
                {
                    double cross = 0;
                    for (int c = first; c <= last; c++)
                    {
                        int ac = (n * g.Channels + c) * plane + p;
                        cross += (double)dOutput[ac] * output[ac] / scale[ac];
                    }
                    int at = (n * g.Channels + j) * plane + p;
                    double direct = dOutput[at] * Math.Pow(scale[at], -g.Beta);
                    dInput[at] = (float)(direct - 2.0 * g.Alpha * g.Beta * input[at] * cross);
                }
            }
        }
    }

    /// <summary>Argument checks shared by the reference and fast kernels.</summary>
    internal static void ThrowIfShapesMismatch(in LrnGeometry g, int batch, int inputLength, int outputLength, string outputName)
    {
        if (g.Size <= 0 || g.Channels <= 0)
            throw new ArgumentException($"LRN: size {g.Size} and channels {g.Channels} must be positive.");
        if (batch < 0)
            throw new ArgumentOutOfRangeException(nameof(batch), batch, "LRN: batch must not be negative.");
        if (inputLength != batch * g.Length)
            throw new ArgumentException($"LRN: input has {inputLength} floats, expected {batch} x {g.Length}.");
        if (outputLength != batch * g.Length)
            throw new ArgumentException($"LRN: {outputName} has {outputLength} floats, expected {batch} x {g.Length}.");
    }
}
