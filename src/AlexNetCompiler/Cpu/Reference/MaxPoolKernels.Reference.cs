namespace AlexNetCompiler.Cpu;

/// <summary>
/// Max pooling, the specification (PyTorch's MaxPool2d defaults): padding acts as -infinity, floor mode,
/// the first maximum in row-major window order wins, and a NaN counts as the maximum.
/// </summary>
public static partial class MaxPoolKernels
{
    /// <summary>
    /// input [N, C, H, W], output [N, C, OH, OW]. argmax (same length as output, or empty in inference)
    /// receives the flat index h * W + w of the chosen element within its channel plane.
    /// </summary>
    public static void ForwardReference(in PoolGeometry g, int batch, ReadOnlySpan<float> input, Span<float> output, Span<int> argmax)
    {
        ThrowIfShapesMismatch(g, batch, input.Length, output.Length);
        if (!argmax.IsEmpty && argmax.Length != output.Length)
            throw new ArgumentException($"MaxPool: argmax has {argmax.Length} entries, expected {output.Length} or none.", nameof(argmax));
        int inPlane = g.InHeight * g.InWidth;
        int outPlane = g.OutHeight * g.OutWidth;
        for (int plane = 0; plane < batch * g.Channels; plane++) // one (n, c) plane at a time
        {
            for (int oh = 0; oh < g.OutHeight; oh++)
            {
                int hStart = oh * g.StrideHeight - g.PaddingHeight;
                int hFirst = Math.Max(hStart, 0), hEnd = Math.Min(hStart + g.KernelHeight, g.InHeight);
                for (int ow = 0; ow < g.OutWidth; ow++)
                {
                    int wStart = ow * g.StrideWidth - g.PaddingWidth;
                    int wFirst = Math.Max(wStart, 0), wEnd = Math.Min(wStart + g.KernelWidth, g.InWidth);
                    float best = float.NegativeInfinity;
                    int bestIndex = hFirst * g.InWidth + wFirst; // a window of -infinity still routes to its first element
                    for (int h = hFirst; h < hEnd; h++)
                    {
                        for (int w = wFirst; w < wEnd; w++)
                        {
                            float v = input[plane * inPlane + h * g.InWidth + w];
                            if (v > best || float.IsNaN(v))
                            {
                                best = v;
                                bestIndex = h * g.InWidth + w;
                            }
                        }
                    }
                    output[plane * outPlane + oh * g.OutWidth + ow] = best;
                    if (!argmax.IsEmpty) argmax[plane * outPlane + oh * g.OutWidth + ow] = bestIndex;
                }
            }
        }
    }

    /// <summary>dOutput and argmax [N, C, OH, OW]; zeroes dInput [N, C, H, W], then adds each gradient at its argmax.</summary>
    public static void BackwardReference(in PoolGeometry g, int batch, ReadOnlySpan<float> dOutput, ReadOnlySpan<int> argmax, Span<float> dInput)
    {
        ThrowIfShapesMismatch(g, batch, dInput.Length, dOutput.Length);
        if (argmax.Length != dOutput.Length)
            throw new ArgumentException($"MaxPool backward: argmax has {argmax.Length} entries, expected {dOutput.Length}.", nameof(argmax));
        int inPlane = g.InHeight * g.InWidth;
        int outPlane = g.OutHeight * g.OutWidth;
        dInput.Clear();
        for (int plane = 0; plane < batch * g.Channels; plane++)
            for (int o = 0; o < outPlane; o++)
                dInput[plane * inPlane + argmax[plane * outPlane + o]] += dOutput[plane * outPlane + o];
    }

    /// <summary>Argument checks shared by the reference and fast kernels.</summary>
    internal static void ThrowIfShapesMismatch(in PoolGeometry g, int batch, int inputLength, int outputLength)
    {
        if (g.KernelHeight <= 0 || g.KernelWidth <= 0 || g.StrideHeight <= 0 || g.StrideWidth <= 0)
            throw new ArgumentException($"MaxPool: kernel ({g.KernelHeight}, {g.KernelWidth}) and stride ({g.StrideHeight}, {g.StrideWidth}) must be positive.");
        if (g.PaddingHeight * 2 > g.KernelHeight || g.PaddingWidth * 2 > g.KernelWidth)
            throw new ArgumentException($"MaxPool: padding ({g.PaddingHeight}, {g.PaddingWidth}) must be at most half the kernel ({g.KernelHeight}, {g.KernelWidth}).");
        if (batch < 0)
            throw new ArgumentOutOfRangeException(nameof(batch), batch, "MaxPool: batch must not be negative.");
        if (inputLength != batch * g.InputLength)
            throw new ArgumentException($"MaxPool: input has {inputLength} floats, expected {batch} x {g.InputLength}.");
        if (outputLength != batch * g.OutputLength)
            throw new ArgumentException($"MaxPool: output has {outputLength} floats, expected {batch} x {g.OutputLength}.");
    }
}
