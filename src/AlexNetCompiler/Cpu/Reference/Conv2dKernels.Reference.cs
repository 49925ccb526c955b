namespace AlexNetCompiler.Cpu;

/// <summary>
/// Conv2d, the specification: straight loops over every output element, one multiply-add per
/// (input channel of the group, kernel row, kernel column). Accumulates in double so the reference
/// is as close to the exact value as float inputs allow. Zero padding; groups split the input and
/// output channels into equal consecutive blocks (as in PyTorch).
/// </summary>
public static partial class Conv2dKernels
{
    /// <summary>
    /// input [N, C, H, W], weight [OC, C/G, KH, KW], bias [OC] or empty, output [N, OC, OH, OW].
    /// output = bias + sum(input * weight), then max(0, .) when relu.
    /// </summary>
    public static void ForwardReference(in Conv2dGeometry g, int batch, ReadOnlySpan<float> input, ReadOnlySpan<float> weight,
        ReadOnlySpan<float> bias, Span<float> output, bool relu)
    {
        ThrowIfShapesMismatch(g, batch, input.Length, weight.Length, bias.Length, output.Length, nameof(output));
        int groupInChannels = g.InChannels / g.Groups;   // C/G
        int groupOutChannels = g.OutChannels / g.Groups; // OC/G
        int inPlane = g.InHeight * g.InWidth;
        int outPlane = g.OutHeight * g.OutWidth;
        int kernelArea = g.KernelHeight * g.KernelWidth;
        for (int n = 0; n < batch; n++)
        {
            for (int oc = 0; oc < g.OutChannels; oc++)
            {
                int group = oc / groupOutChannels;
                for (int oh = 0; oh < g.OutHeight; oh++)
                {
                    for (int ow = 0; ow < g.OutWidth; ow++)
                    {
                        double sum = bias.IsEmpty ? 0.0 : bias[oc];
                        for (int icg = 0; icg < groupInChannels; icg++)
                        {
                            int ic = group * groupInChannels + icg;
                            for (int kh = 0; kh < g.KernelHeight; kh++)
                            {
                                int ih = oh * g.StrideHeight - g.PaddingHeight + kh;
                                if ((uint)ih >= (uint)g.InHeight) continue; // zero padding
                                for (int kw = 0; kw < g.KernelWidth; kw++)
                                {
                                    int iw = ow * g.StrideWidth - g.PaddingWidth + kw;
                                    if ((uint)iw >= (uint)g.InWidth) continue;
                                    float x = input[(n * g.InChannels + ic) * inPlane + ih * g.InWidth + iw];
                                    float w = weight[(oc * groupInChannels + icg) * kernelArea + kh * g.KernelWidth + kw];
                                    sum += (double)x * w;
                                }
                            }
                        }
                        float value = (float)sum;
                        if (relu && value < 0f) value = 0f; // max(0, x); NaN stays NaN as in torch.relu
                        output[(n * g.OutChannels + oc) * outPlane + oh * g.OutWidth + ow] = value;
                    }
                }
            }
        }
    }

    /// <summary>
    /// Given dOutput [N, OC, OH, OW] (gradient w.r.t. the conv output, any ReLU mask already applied):
    /// dInput [N, C, H, W] (skipped when empty), dWeight [OC, C/G, KH, KW], dBias [OC] (skipped when empty).
    /// All three are overwritten.
    /// </summary>
    public static void BackwardReference(in Conv2dGeometry g, int batch, ReadOnlySpan<float> input, ReadOnlySpan<float> weight,
        ReadOnlySpan<float> dOutput, Span<float> dInput, Span<float> dWeight, Span<float> dBias)
    {
        ThrowIfShapesMismatch(g, batch, input.Length, weight.Length, dBias.Length, dOutput.Length, nameof(dOutput));
        if (!dInput.IsEmpty && dInput.Length != batch * g.InputLength)
            throw new ArgumentException($"Conv2d backward: dInput has {dInput.Length} floats, expected {batch * g.InputLength}.", nameof(dInput));
        if (dWeight.Length != g.WeightLength)
            throw new ArgumentException($"Conv2d backward: dWeight has {dWeight.Length} floats, expected {g.WeightLength}.", nameof(dWeight));
        int groupInChannels = g.InChannels / g.Groups;
        int groupOutChannels = g.OutChannels / g.Groups;
        int inPlane = g.InHeight * g.InWidth;
        int outPlane = g.OutHeight * g.OutWidth;
        int kernelArea = g.KernelHeight * g.KernelWidth;

        // dBias[oc] = sum over n, oh, ow of dOutput[n, oc, oh, ow]
        if (!dBias.IsEmpty)
        {
            for (int oc = 0; oc < g.OutChannels; oc++)
            {
                double sum = 0;
                for (int n = 0; n < batch; n++)
                    for (int p = 0; p < outPlane; p++)
                        sum += dOutput[(n * g.OutChannels + oc) * outPlane + p];
                dBias[oc] = (float)sum;
            }
        }

        // dWeight[oc, icg, kh, kw] = sum over n, oh, ow of dOutput[n, oc, oh, ow] * input[n, ic, oh*s - p + kh, ow*s - p + kw]
        for (int oc = 0; oc < g.OutChannels; oc++)
        {
            int group = oc / groupOutChannels;
            for (int icg = 0; icg < groupInChannels; icg++)
            {
                int ic = group * groupInChannels + icg;
                for (int kh = 0; kh < g.KernelHeight; kh++)
                {
                    for (int kw = 0; kw < g.KernelWidth; kw++)
                    {
                        double sum = 0;
                        for (int n = 0; n < batch; n++)
                        {
                            for (int oh = 0; oh < g.OutHeight; oh++)
                            {
                                int ih = oh * g.StrideHeight - g.PaddingHeight + kh;
                                if ((uint)ih >= (uint)g.InHeight) continue;
                                for (int ow = 0; ow < g.OutWidth; ow++)
                                {
                                    int iw = ow * g.StrideWidth - g.PaddingWidth + kw;
                                    if ((uint)iw >= (uint)g.InWidth) continue;
                                    sum += (double)dOutput[(n * g.OutChannels + oc) * outPlane + oh * g.OutWidth + ow]
                                         * input[(n * g.InChannels + ic) * inPlane + ih * g.InWidth + iw];
                                }
                            }
                        }
                        dWeight[(oc * groupInChannels + icg) * kernelArea + kh * g.KernelWidth + kw] = (float)sum;
                    }
                }
            }
        }

        // dInput[n, ic, ih, iw] = sum over the outputs that read it: oh*s - p + kh == ih, ow*s - p + kw == iw
        if (dInput.IsEmpty) return;
        for (int n = 0; n < batch; n++)
        {
            for (int ic = 0; ic < g.InChannels; ic++)
            {
                int group = ic / groupInChannels;
                int icg = ic - group * groupInChannels;
                for (int ih = 0; ih < g.InHeight; ih++)
                {
                    for (int iw = 0; iw < g.InWidth; iw++)
                    {
                        double sum = 0;
                        for (int kh = 0; kh < g.KernelHeight; kh++)
                        {
                            int ohScaled = ih + g.PaddingHeight - kh; // = oh * strideHeight
                            if (ohScaled < 0 || ohScaled % g.StrideHeight != 0) continue;
                            int oh = ohScaled / g.StrideHeight;
                            if (oh >= g.OutHeight) continue;
                            for (int kw = 0; kw < g.KernelWidth; kw++)
                            {
                                int owScaled = iw + g.PaddingWidth - kw;
                                if (owScaled < 0 || owScaled % g.StrideWidth != 0) continue;
                                int ow = owScaled / g.StrideWidth;
                                if (ow >= g.OutWidth) continue;
                                for (int ocg = 0; ocg < groupOutChannels; ocg++)
                                {
                                    int oc = group * groupOutChannels + ocg;
                                    sum += (double)dOutput[(n * g.OutChannels + oc) * outPlane + oh * g.OutWidth + ow]
                                         * weight[(oc * groupInChannels + icg) * kernelArea + kh * g.KernelWidth + kw];
                                }
                            }
                        }
                        dInput[(n * g.InChannels + ic) * inPlane + ih * g.InWidth + iw] = (float)sum;
                    }
                }
            }
        }
    }

    /// <summary>Argument checks shared by the reference and fast kernels.</summary>
    internal static void ThrowIfShapesMismatch(in Conv2dGeometry g, int batch, int inputLength, int weightLength, int biasLength, int outputLength, string outputName)
    {
        if (g.Groups <= 0 || g.InChannels % g.Groups != 0 || g.OutChannels % g.Groups != 0)
            throw new ArgumentException($"Conv2d: groups {g.Groups} must divide in channels {g.InChannels} and out channels {g.OutChannels}.");
        if (g.StrideHeight <= 0 || g.StrideWidth <= 0)
            throw new ArgumentException($"Conv2d: stride ({g.StrideHeight}, {g.StrideWidth}) must be positive.");
        if (batch < 0)
            throw new ArgumentOutOfRangeException(nameof(batch), batch, "Conv2d: batch must not be negative.");
        if (inputLength != batch * g.InputLength)
            throw new ArgumentException($"Conv2d: input has {inputLength} floats, expected {batch} x {g.InputLength}.");
        if (weightLength != g.WeightLength)
            throw new ArgumentException($"Conv2d: weight has {weightLength} floats, expected {g.WeightLength}.");
        if (biasLength != 0 && biasLength != g.OutChannels)
            throw new ArgumentException($"Conv2d: bias has {biasLength} floats, expected {g.OutChannels} or none.");
        if (outputLength != batch * g.OutputLength)
            throw new ArgumentException($"Conv2d: {outputName} has {outputLength} floats, expected {batch} x {g.OutputLength}.");
    }
}
