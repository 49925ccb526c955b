namespace AlexNetCompiler.Cpu;

/// <summary>
/// Adaptive average pooling, the specification (PyTorch's AdaptiveAvgPool2d): output (i, j) of a channel is the mean of
/// the input window rows [BinStart(i), BinEnd(i)) by columns [BinStart(j), BinEnd(j)), summed in row-major order.
/// Windows of neighbouring outputs overlap when the sizes do not divide.
/// </summary>
public static partial class AdaptiveAvgPoolKernels
{
    /// <summary>input [N, C, H, W] to output [N, C, OH, OW].</summary>
    public static void ForwardReference(in AdaptiveAvgPoolGeometry g, int batch, ReadOnlySpan<float> input, Span<float> output)
    {
        ThrowIfShapesMismatch(g, batch, input.Length, output.Length);
        int inPlane = g.InHeight * g.InWidth, outPlane = g.OutHeight * g.OutWidth;
        for (int plane = 0; plane < batch * g.Channels; plane++)
        {
            for (int oh = 0; oh < g.OutHeight; oh++)
            {
                int h0 = AdaptiveAvgPoolGeometry.BinStart(oh, g.InHeight, g.OutHeight);
                int h1 = AdaptiveAvgPoolGeometry.BinEnd(oh, g.InHeight, g.OutHeight);
                for (int ow = 0; ow < g.OutWidth; ow++)
                {
                    int w0 = AdaptiveAvgPoolGeometry.BinStart(ow, g.InWidth, g.OutWidth);
                    int w1 = AdaptiveAvgPoolGeometry.BinEnd(ow, g.InWidth, g.OutWidth);
                    float sum = 0f;
                    for (int h = h0; h < h1; h++)
                        for (int w = w0; w < w1; w++)
                            sum += input[plane * inPlane + h * g.InWidth + w];
                    output[plane * outPlane + oh * g.OutWidth + ow] = sum / ((h1 - h0) * (w1 - w0));
                }
            }
        }
    }

    /// <summary>dOutput [N, C, OH, OW] to dInput [N, C, H, W]: each input element gets dY / (window size) from every window holding it.</summary>
    public static void BackwardReference(in AdaptiveAvgPoolGeometry g, int batch, ReadOnlySpan<float> dOutput, Span<float> dInput)
    {
        ThrowIfShapesMismatch(g, batch, dInput.Length, dOutput.Length);
        int inPlane = g.InHeight * g.InWidth, outPlane = g.OutHeight * g.OutWidth;
        dInput.Clear();
        for (int plane = 0; plane < batch * g.Channels; plane++)
        {
            for (int oh = 0; oh < g.OutHeight; oh++)
            {
                int h0 = AdaptiveAvgPoolGeometry.BinStart(oh, g.InHeight, g.OutHeight);
                int h1 = AdaptiveAvgPoolGeometry.BinEnd(oh, g.InHeight, g.OutHeight);
                for (int ow = 0; ow < g.OutWidth; ow++)
                {
                    int w0 = AdaptiveAvgPoolGeometry.BinStart(ow, g.InWidth, g.OutWidth);
                    int w1 = AdaptiveAvgPoolGeometry.BinEnd(ow, g.InWidth, g.OutWidth);
                    float share = dOutput[plane * outPlane + oh * g.OutWidth + ow] / ((h1 - h0) * (w1 - w0));
                    for (int h = h0; h < h1; h++)
                        for (int w = w0; w < w1; w++)
                            dInput[plane * inPlane + h * g.InWidth + w] += share;
                }
            }
        }
    }

    /// <summary>Argument checks shared by the reference and fast kernels.</summary>
    internal static void ThrowIfShapesMismatch(in AdaptiveAvgPoolGeometry g, int batch, int inputLength, int outputLength)
    {
        if (g.Channels <= 0 || g.InHeight <= 0 || g.InWidth <= 0 || g.OutHeight <= 0 || g.OutWidth <= 0)
            throw new ArgumentException($"AdaptiveAvgPool: channels ({g.Channels}) and sizes ({g.InHeight}x{g.InWidth} -> {g.OutHeight}x{g.OutWidth}) must be positive.");
        if (batch < 0)
            throw new ArgumentOutOfRangeException(nameof(batch), batch, "AdaptiveAvgPool: batch must not be negative.");
        if (inputLength != batch * g.InputLength)
            throw new ArgumentException($"AdaptiveAvgPool: input has {inputLength} floats, expected {batch} x {g.InputLength}.");
        if (outputLength != batch * g.OutputLength)
            throw new ArgumentException($"AdaptiveAvgPool: output has {outputLength} floats, expected {batch} x {g.OutputLength}.");
    }
}
