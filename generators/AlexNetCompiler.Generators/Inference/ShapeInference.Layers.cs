using System;
using System.Collections.Generic;
using AlexNetCompiler.Generators.Diagnostics;
using AlexNetCompiler.Generators.Model;

namespace AlexNetCompiler.Generators.Inference;

// Each layer kind's rules: its arguments, its output shape, its parameters in the flat buffer and the paper's bias policy.
internal static partial class ShapeInference
{
    private sealed partial class Builder
    {

        private LayerModel? Conv2d(LayerSpec l, string label, TensorShape input, bool known, (string Name, string Identifier) name,
            ref long parameterOffset, float paperBias, int index)
        {
            bool ok = true;
            ok &= Positive(l, label, "OutChannels", l.Units, "OutChannels");
            ok &= NotNegative(l, label, "KernelHeight", l.KernelHeight) & NotNegative(l, label, "KernelWidth", l.KernelWidth);
            ok &= NotNegative(l, label, "StrideHeight", l.StrideHeight) & NotNegative(l, label, "StrideWidth", l.StrideWidth);
            ok &= AtLeast(l, label, "PaddingHeight", l.PaddingHeight, -1, "-1 (not set) or more") & AtLeast(l, label, "PaddingWidth", l.PaddingWidth, -1, "-1 (not set) or more");
            int kh = l.KernelHeight > 0 ? l.KernelHeight : l.Kernel;
            int kw = l.KernelWidth > 0 ? l.KernelWidth : l.Kernel;
            int sh = l.StrideHeight > 0 ? l.StrideHeight : l.Stride;
            int sw = l.StrideWidth > 0 ? l.StrideWidth : l.Stride;
            int ph = l.PaddingHeight >= 0 ? l.PaddingHeight : l.Padding;
            int pw = l.PaddingWidth >= 0 ? l.PaddingWidth : l.Padding;
            if (ok)
            {
                ok &= Positive(l, label, "Kernel", kh, "KernelHeight", "Kernel");
                if (kw != kh || l.KernelWidth > 0) ok &= Positive(l, label, "KernelWidth", kw, "KernelWidth", "Kernel");
                ok &= Positive(l, label, "Stride", sh, "StrideHeight", "Stride");
                if (sw != sh || l.StrideWidth > 0) ok &= Positive(l, label, "StrideWidth", sw, "StrideWidth", "Stride");
                ok &= NotNegativeResolved(l, label, "Padding", ph, "PaddingHeight", "Padding");
                if (pw != ph || l.PaddingWidth >= 0) ok &= NotNegativeResolved(l, label, "PaddingWidth", pw, "PaddingWidth", "Padding");
            }
            ok &= Positive(l, label, "Groups", l.Groups, "Groups");
            ok &= FiniteOrUnset(l, label, l.BiasInit);
            if (!ok || !known) return null;

            if (input.Channels % l.Groups != 0)
            {
                Report(DiagnosticDescriptors.GroupsDoNotDivide, l.LocationOf("Groups"), label, l.Groups, "input", input.Channels);
                ok = false;
            }
            if (l.Units % l.Groups != 0)
            {
                Report(DiagnosticDescriptors.GroupsDoNotDivide, l.LocationOf("Groups"), label, l.Groups, "output", l.Units);
                ok = false;
            }
            if (!Window(l, label, input, kh, kw, sh, sw, ph, pw, index, out int oh, out int ow)) return null;
            if (!ok) return null;

            var output = new TensorShape(l.Units, oh, ow);
            if (!FitsInt(l, label, "its output", (long)l.Units * oh * ow)) return null;
            long weightLength = (long)l.Units * (input.Channels / l.Groups) * kh * kw;
            if (!FitsInt(l, label, "its weight", weightLength)) return null;

            int fanIn = (int)Math.Min(int.MaxValue, (long)(input.Channels / l.Groups) * kh * kw);
            var parameters = new List<ParameterModel>();
            AddParameter(parameters, name, ParameterRole.Weight, new[] { l.Units, input.Channels / l.Groups, kh, kw }, weightLength, fanIn, 0f, ref parameterOffset);
            if (l.Bias)
            {
                AddParameter(parameters, name, ParameterRole.Bias, new[] { l.Units }, l.Units, fanIn, float.IsNaN(l.BiasInit) ? paperBias : l.BiasInit, ref parameterOffset);
            }
            return new LayerModel(LayerKind.Conv2d, index, name.Name, name.Identifier, input, output, kh, kw, sh, sw, ph, pw, l.Groups, l.Bias,
                0, 0, 0, 0, 0, parameters.ToEquatableArray());
        }

        private LayerModel? MaxPool(LayerSpec l, string label, TensorShape input, bool known, (string Name, string Identifier) name, int index)
        {
            bool ok = true;
            ok &= NotNegative(l, label, "KernelHeight", l.KernelHeight) & NotNegative(l, label, "KernelWidth", l.KernelWidth);
            ok &= NotNegative(l, label, "Stride", l.Stride) & NotNegative(l, label, "StrideHeight", l.StrideHeight) & NotNegative(l, label, "StrideWidth", l.StrideWidth);
            ok &= NotNegative(l, label, "Padding", l.Padding);
            int kh = l.KernelHeight > 0 ? l.KernelHeight : l.Kernel;
            int kw = l.KernelWidth > 0 ? l.KernelWidth : l.Kernel;
            if (ok)
            {
                ok &= Positive(l, label, "Kernel", kh, "KernelHeight", "Kernel");
                if (kw != kh || l.KernelWidth > 0) ok &= Positive(l, label, "KernelWidth", kw, "KernelWidth", "Kernel");
            }
            if (!ok) return null;
            // Stride 0 means "equal to the kernel", per side (PyTorch's default).
            int sh = l.StrideHeight > 0 ? l.StrideHeight : l.Stride > 0 ? l.Stride : kh;
            int sw = l.StrideWidth > 0 ? l.StrideWidth : l.Stride > 0 ? l.Stride : kw;
            int p = l.Padding;
            if (p > kh / 2 || p > kw / 2)
            {
                // PyTorch rejects this too: a window lying wholly in the -infinity padding has no maximum.
                int half = Math.Min(kh, kw) / 2;
                Report(DiagnosticDescriptors.ArgumentOutOfRange, l.LocationOf("Padding"), label, "Padding", $"at most half the kernel ({half})", p);
                return null;
            }
            if (!known) return null;
            if (!Window(l, label, input, kh, kw, sh, sw, p, p, index, out int oh, out int ow)) return null;
            return new LayerModel(LayerKind.MaxPool, index, name.Name, name.Identifier, input, new TensorShape(input.Channels, oh, ow),
                kh, kw, sh, sw, p, p, 0, false, 0, 0, 0, 0, 0, EquatableArray<ParameterModel>.Empty);
        }

        /// <summary>
        /// PyTorch's adaptive average pool: the output size is the spec's, whatever the input; the bins (computed by
        /// the kernels from the two sizes) are never empty, so any positive size is valid, larger than the input too.
        /// </summary>
        private LayerModel? AdaptiveAvgPool(LayerSpec l, string label, TensorShape input, bool known, (string Name, string Identifier) name, int index)
        {
            bool ok = NotNegative(l, label, "OutputSize", l.OutputSize) & NotNegative(l, label, "OutputHeight", l.OutputHeight)
                & NotNegative(l, label, "OutputWidth", l.OutputWidth);
            int oh = l.OutputHeight > 0 ? l.OutputHeight : l.OutputSize;
            int ow = l.OutputWidth > 0 ? l.OutputWidth : l.OutputSize;
            if (ok)
            {
                ok &= Positive(l, label, "OutputSize", oh, "OutputHeight", "OutputSize");
                if (ow != oh || l.OutputWidth > 0) ok &= Positive(l, label, "OutputWidth", ow, "OutputWidth", "OutputSize");
            }
            if (!ok || !known) return null;
            // The kernels compute a bin's bounds as i * input / output in 32 bits.
            // (the largest value is input * output + max(input, output), in backward's window range)
            if ((long)input.Height * oh + Math.Max(input.Height, oh) >= int.MaxValue)
                ok = Fail(l, label, "OutputHeight", $"such that {input.Height} x OutputHeight fits in 32 bits", oh);
            if ((long)input.Width * ow + Math.Max(input.Width, ow) >= int.MaxValue)
                ok = Fail(l, label, "OutputWidth", $"such that {input.Width} x OutputWidth fits in 32 bits", ow);
            if (!ok) return null;
            if (!FitsInt(l, label, "its output", (long)input.Channels * oh * ow)) return null;
            return new LayerModel(LayerKind.AdaptiveAvgPool, index, name.Name, name.Identifier, input, new TensorShape(input.Channels, oh, ow),
                0, 0, 0, 0, 0, 0, 0, false, 0, 0, 0, 0, 0, EquatableArray<ParameterModel>.Empty);
        }

        private LayerModel? Lrn(LayerSpec l, string label, TensorShape input, bool known, (string Name, string Identifier) name, int index)
        {
            bool ok = true;
            if (l.LrnSize < 1)
            {
                ok = Fail(l, label, "Size", "positive", l.LrnSize);
            }
            else if (l.LrnSize % 2 == 0)
            {
                Report(DiagnosticDescriptors.LrnSizeEven, l.LocationOf("Size"), label, l.LrnSize);
                ok = false;
            }
            if (!(l.LrnAlpha >= 0f) || float.IsInfinity(l.LrnAlpha)) ok = Fail(l, label, "Alpha", "finite and non-negative", Format(l.LrnAlpha));
            if (!(l.LrnBeta >= 0f) || float.IsInfinity(l.LrnBeta)) ok = Fail(l, label, "Beta", "finite and non-negative", Format(l.LrnBeta));
            // K = 0 would divide by zero wherever a whole window is zero, which ReLU outputs make common.
            if (!(l.LrnK > 0f) || float.IsInfinity(l.LrnK)) ok = Fail(l, label, "K", "finite and positive", Format(l.LrnK));
            if (!ok || !known) return null;
            return new LayerModel(LayerKind.Lrn, index, name.Name, name.Identifier, input, input,
                0, 0, 0, 0, 0, 0, 0, false, l.LrnSize, l.LrnAlpha, l.LrnBeta, l.LrnK, 0, EquatableArray<ParameterModel>.Empty);
        }

        private LayerModel? Elementwise(LayerSpec l, TensorShape input, bool known, (string Name, string Identifier) name, int index, bool flattened)
        {
            if (!known) return null;
            float p = l.Kind == LayerKind.Dropout ? l.DropoutP : 0f;
            return new LayerModel(l.Kind, index, name.Name, name.Identifier, input, input,
                0, 0, 0, 0, 0, 0, 0, false, 0, 0, 0, 0, p, EquatableArray<ParameterModel>.Empty, Flattened: flattened);
        }

        private LayerModel? Dense(LayerSpec l, string label, TensorShape input, bool known, (string Name, string Identifier) name,
            ref long parameterOffset, float paperBias, int index)
        {
            bool ok = Positive(l, label, "OutFeatures", l.Units, "OutFeatures");
            ok &= NotNegative(l, label, "InFeatures", l.InFeatures);
            ok &= FiniteOrUnset(l, label, l.BiasInit);
            if (!ok || !known) return null;
            int inFeatures = input.Length;
            if (l.InFeatures > 0 && l.InFeatures != inFeatures)
            {
                ReportFixable(DiagnosticDescriptors.DenseInFeaturesMismatch, l.LocationOf("InFeatures"),
                    new[] { new DiagnosticProperty(DiagnosticPropertyNames.InferredInFeatures, Invariant(inFeatures)) },
                    label, l.InFeatures, $"[{input.Channels}, {input.Height}, {input.Width}]", inFeatures);
                return null;
            }
            long weightLength = (long)l.Units * inFeatures;
            if (!FitsInt(l, label, "its weight", weightLength)) return null;
            var parameters = new List<ParameterModel>();
            AddParameter(parameters, name, ParameterRole.Weight, new[] { l.Units, inFeatures }, weightLength, inFeatures, 0f, ref parameterOffset);
            if (l.Bias)
            {
                AddParameter(parameters, name, ParameterRole.Bias, new[] { l.Units }, l.Units, inFeatures, float.IsNaN(l.BiasInit) ? paperBias : l.BiasInit, ref parameterOffset);
            }
            return new LayerModel(LayerKind.Dense, index, name.Name, name.Identifier, input, new TensorShape(l.Units, 1, 1),
                0, 0, 0, 0, 0, 0, 0, l.Bias, 0, 0, 0, 0, 0, parameters.ToEquatableArray(), Flattened: true);
        }

        private static void AddParameter(List<ParameterModel> parameters, (string Name, string Identifier) layer, ParameterRole role,
            int[] shape, long length, int fanIn, float paperBias, ref long offset)
        {
            string suffix = role == ParameterRole.Weight ? "weight" : "bias";
            // Offsets beyond int range are reported once for the whole buffer; clamp here so nothing overflows first.
            int start = (int)Math.Min(offset, int.MaxValue);
            parameters.Add(new ParameterModel(layer.Name + "." + suffix, layer.Identifier + (role == ParameterRole.Weight ? "Weight" : "Bias"),
                shape.ToEquatableArray(), start, (int)length, role, fanIn, paperBias));
            offset += length;
        }

        /// <summary>Checks a sliding window (conv or pool) against its padded input; computes the output size and
        /// warns when the stride leaves real input rows or columns unread.</summary>
        private bool Window(LayerSpec l, string label, TensorShape input, int kh, int kw, int sh, int sw, int ph, int pw, int layerIndex,
            out int oh, out int ow)
        {
            long paddedH = input.Height + 2L * ph, paddedW = input.Width + 2L * pw;
            oh = ow = 0;
            if (kh > paddedH || kw > paddedW)
            {
                Report(DiagnosticDescriptors.KernelLargerThanInput, l.LocationOf("Kernel", "KernelHeight", "KernelWidth"), label,
                    $"{kh}x{kw}", $"{paddedH}x{paddedW}", $"{input.Height}x{input.Width}", $"{ph}x{pw}",
                    $"{OutputSize(input.Height, kh, sh, ph)}x{OutputSize(input.Width, kw, sw, pw)}");
                return false;
            }
            oh = (int)OutputSize(input.Height, kh, sh, ph);
            ow = (int)OutputSize(input.Width, kw, sw, pw);

            // The windows end (remainder) positions short of the padded input's far edge; the last `padding` of
            // those are padding, the rest are real pixels that no window reads.
            long droppedRows = Math.Max(0, (paddedH - kh) % sh - ph);
            long droppedColumns = Math.Max(0, (paddedW - kw) % sw - pw);
            if (droppedRows > 0 || droppedColumns > 0)
            {
                long tileH = droppedRows > 0 ? input.Height + sh - (paddedH - kh) % sh : input.Height;
                long tileW = droppedColumns > 0 ? input.Width + sw - (paddedW - kw) % sw : input.Width;
                // The padding fix is known here; the input fix needs every layer, so Build adds it afterwards.
                string? paddingArguments = TilingPaddingArguments(l, input, kh, kw, sh, sw, ph, pw);
                DiagnosticProperty[] properties = paddingArguments is null
                    ? Array.Empty<DiagnosticProperty>()
                    : new[] { new DiagnosticProperty(DiagnosticPropertyNames.TilingPaddingArguments, paddingArguments) };
                _strideDrops.Add((_diagnostics.Count, layerIndex));
                ReportFixable(DiagnosticDescriptors.StrideDropsInput, l.Location, properties, label, $"{kh}x{kw}", $"{sh}x{sw}", droppedRows, droppedColumns,
                    $"{input.Height}x{input.Width}", $"{tileH}x{tileW}");
            }
            return true;
        }

        /// <summary>
        /// The padding arguments ("Padding=2", or "PaddingHeight=1;PaddingWidth=2" for a Conv2d whose sides differ or
        /// are written per side) at which a window layer reads its whole input: the smallest padding, at least the
        /// current, that leaves only padding unread. Null for a max pool that would need more than half its kernel.
        /// </summary>
        private static string? TilingPaddingArguments(LayerSpec l, TensorShape input, int kh, int kw, int sh, int sw, int ph, int pw)
        {
            if (l.Kind == LayerKind.MaxPool)
            {
                // One Padding for both sides, at most half the kernel (PyTorch's rule, checked in MaxPool).
                int limit = Math.Min(kh, kw) / 2;
                for (int p = ph; p <= limit; p++)
                {
                    if (DroppedRealInput(input.Height, kh, sh, p) == 0 && DroppedRealInput(input.Width, kw, sw, p) == 0) return "Padding=" + Invariant(p);
                }
                return null;
            }
            int tilingPh = TilingPadding(input.Height, kh, sh, ph);
            int tilingPw = TilingPadding(input.Width, kw, sw, pw);
            if (tilingPh == tilingPw && !l.HasArgument("PaddingHeight") && !l.HasArgument("PaddingWidth")) return "Padding=" + Invariant(tilingPh);
            var arguments = new List<string>(2);
            if (tilingPh != ph) arguments.Add("PaddingHeight=" + Invariant(tilingPh));
            if (tilingPw != pw) arguments.Add("PaddingWidth=" + Invariant(tilingPw));
            return string.Join(";", arguments);
        }

        /// <summary>The smallest padding, at least <paramref name="padding"/>, at which no real input is dropped along
        /// one axis; at most max(padding, stride - 1), since the windows then stop short by at most the padding.</summary>
        private static int TilingPadding(int input, int kernel, int stride, int padding)
        {
            int p = padding;
            while (DroppedRealInput(input, kernel, stride, p) > 0) p++;
            return p;
        }

        /// <summary>How many real input rows (or columns) the windows stop short of: the remainder less the padding.</summary>
        private static long DroppedRealInput(long input, int kernel, int stride, int padding) =>
            Math.Max(0, (input + 2L * padding - kernel) % stride - padding);

        private static string Invariant(long value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }
}
