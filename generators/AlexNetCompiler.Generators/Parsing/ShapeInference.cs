using System;
using System.Collections.Generic;
using System.Threading;
using AlexNetCompiler.Generators.Diagnostics;
using AlexNetCompiler.Generators.Lowering;
using AlexNetCompiler.Generators.Model;

namespace AlexNetCompiler.Generators.Parsing;

/// <summary>
/// Turns a parsed <see cref="NetworkSpec"/> into a <see cref="NetworkModel"/>: checks the layer order and every
/// argument, names the layers, infers each output shape, lays out the flat parameter buffer and plans memory.
/// Reports what is wrong as diagnostics; the model is null when any of them is an error.
/// </summary>
internal static class ShapeInference
{
    /// <summary>ANC0012 warns above this many parameters (4 GB of float32, about 16 times AlexNet).</summary>
    public const long ParameterCountWarningLimit = 1_000_000_000;

    /// <summary>ANC0012 warns above this many bytes of training activations per sample (AlexNet needs a few MiB).</summary>
    public const long TrainingActivationBytesWarningLimit = 1L << 30;

    public static NetworkResult Build(NetworkSpec spec, CancellationToken cancellationToken)
    {
        try
        {
            return new Builder(spec).Build(cancellationToken);
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            var diagnostics = new List<DiagnosticInfo>(spec.Diagnostics)
            {
                DiagnosticInfo.Create(DiagnosticDescriptors.InternalError, spec.ClassLocation, spec.DisplayName,
                    exception.GetType().Name + ": " + exception.Message),
            };
            return new NetworkResult(null, spec.DisplayName, diagnostics.ToEquatableArray());
        }
    }

    /// <summary>Output size of a convolution or floor-mode pool along one axis (PyTorch's formula).</summary>
    public static long OutputSize(long input, int kernel, int stride, int padding)
    {
        long extent = input + 2L * padding - kernel;
        long quotient = extent / stride;
        if (extent < 0 && extent % stride != 0) quotient--;   // floor, not truncation, for the diagnostic's sake
        return quotient + 1;
    }

    private static bool IsSpatial(LayerKind kind) => kind is LayerKind.Conv2d or LayerKind.Lrn or LayerKind.MaxPool;

    private sealed class Builder
    {
        private readonly NetworkSpec _spec;
        private readonly List<DiagnosticInfo> _diagnostics;
        private readonly string _network;

        public Builder(NetworkSpec spec)
        {
            _spec = spec;
            _diagnostics = new List<DiagnosticInfo>(spec.Diagnostics);
            _network = $"Network '{spec.DisplayName}'";
        }

        private void Report(Microsoft.CodeAnalysis.DiagnosticDescriptor descriptor, LocationInfo? location, params object[] arguments) =>
            _diagnostics.Add(DiagnosticInfo.Create(descriptor, location ?? _spec.ClassLocation, arguments));

        private bool HasErrors()
        {
            foreach (DiagnosticInfo d in _diagnostics)
            {
                if (d.Severity == Microsoft.CodeAnalysis.DiagnosticSeverity.Error) return true;
            }
            return false;
        }

        private NetworkResult Result(NetworkModel? model) =>
            new(HasErrors() ? null : model, _spec.DisplayName, _diagnostics.ToEquatableArray(), _spec.Members);

        public NetworkResult Build(CancellationToken cancellationToken)
        {
            // Compiler errors in the attributes (CS0246, CS1503, ...) are the compiler's to report: the values we
            // would read are not what the user meant, so infer nothing.
            if (_spec.HasCompilerErrors) return Result(null);
            foreach (DiagnosticInfo d in _spec.Diagnostics)
            {
                if (d.Descriptor.Id == DiagnosticDescriptors.InternalError.Id) return Result(null);
            }

            bool inputValid = CheckInput();

            // The loss head is optional and must be last; every other layer is "the body".
            EquatableArray<LayerSpec> all = _spec.Layers;
            LayerSpec? lossSpec = null;
            var body = new List<LayerSpec>();
            for (int i = 0; i < all.Length; i++)
            {
                if (all[i].Kind != LayerKind.SoftmaxCrossEntropy)
                {
                    body.Add(all[i]);
                }
                else if (i == all.Length - 1)
                {
                    lossSpec = all[i];
                }
                else
                {
                    Report(DiagnosticDescriptors.LossNotLast, all[i].Location,
                        $"Layer {i} (SoftmaxCrossEntropy)", $"layer {i + 1} ({all[i + 1].Kind})");
                }
            }

            if (body.Count == 0)
            {
                Report(DiagnosticDescriptors.NoLayers, _spec.ClassLocation, _spec.DisplayName);
                return Result(null);
            }

            (string Name, string Identifier)[] names = NameLayers(body, lossSpec);
            string Label(int i) => $"Layer {i} '{names[i].Name}' ({(i < body.Count ? body[i].Kind : LayerKind.SoftmaxCrossEntropy)})";

            CheckOrder(body, Label);

            var layers = new List<LayerModel>();
            TensorShape current = inputValid ? new TensorShape(_spec.Channels, _spec.Height, _spec.Width) : default;
            bool known = inputValid;     // false once a shape cannot be inferred: later layers check only their own arguments
            bool flattened = false;
            int convOrdinal = 0;
            int denseCount = 0;
            foreach (LayerSpec l in body) if (l.Kind == LayerKind.Dense) denseCount++;
            int denseOrdinal = 0;
            long parameterOffset = 0;

            for (int i = 0; i < body.Count; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                LayerSpec layer = body[i];
                string label = Label(i);
                TensorShape input = current;
                LayerModel? model = null;

                switch (layer.Kind)
                {
                    case LayerKind.Conv2d:
                        convOrdinal++;
                        model = Conv2d(layer, label, input, known && !flattened, names[i], ref parameterOffset,
                            paperBias: convOrdinal is 2 or 4 or 5 ? 1f : 0f, i);
                        break;
                    case LayerKind.MaxPool:
                        model = MaxPool(layer, label, input, known && !flattened, names[i], i);
                        break;
                    case LayerKind.Lrn:
                        model = Lrn(layer, label, input, known && !flattened, names[i], i);
                        break;
                    case LayerKind.Relu:
                        model = Elementwise(layer, input, known, names[i], i, flattened);
                        break;
                    case LayerKind.Dropout:
                        if (!(layer.DropoutP >= 0f && layer.DropoutP < 1f))
                        {
                            Report(DiagnosticDescriptors.ArgumentOutOfRange, layer.LocationOf("P"), label, "P", "in [0, 1)", Format(layer.DropoutP));
                        }
                        model = Elementwise(layer, input, known, names[i], i, flattened);
                        break;
                    case LayerKind.Dense:
                        denseOrdinal++;
                        model = Dense(layer, label, input, known, names[i], ref parameterOffset,
                            paperBias: denseOrdinal < denseCount ? 1f : 0f, i);
                        flattened = true;
                        break;
                }

                if (model is null)
                {
                    known = false;
                    continue;
                }
                layers.Add(model);
                current = model.Output;
            }

            if (!known || HasErrors()) return Result(null);

            // The loss head: softmax cross-entropy over the last Dense layer's outputs.
            LayerModel last = layers[layers.Count - 1];
            int classCount = last.Output.Length;
            if (classCount == 1)
            {
                Report(DiagnosticDescriptors.SingleClass, body[body.Count - 1].LocationOf("OutFeatures"), _spec.DisplayName);
            }
            layers.Add(new LayerModel(LayerKind.SoftmaxCrossEntropy, layers.Count, names[body.Count].Name, names[body.Count].Identifier,
                last.Output, last.Output, 0, 0, 0, 0, 0, 0, 0, false, 0, 0, 0, 0, 0,
                EquatableArray<ParameterModel>.Empty, Flattened: true));

            if (parameterOffset > int.MaxValue)
            {
                Report(DiagnosticDescriptors.TensorTooLarge, _spec.ClassLocation, _network, "the parameter buffer", parameterOffset, int.MaxValue);
                return Result(null);
            }

            var input0 = new TensorShape(_spec.Channels, _spec.Height, _spec.Width);
            // The memory plan is the CPU backend's: it allocates exactly the buffers of its execution plan.
            MemoryPlanModel memory = Lowerer.PlanMemory(Lowerer.Lower(input0, classCount, parameterOffset, layers, Backend.Cpu), layers, parameterOffset);
            if (parameterOffset > ParameterCountWarningLimit)
            {
                Report(DiagnosticDescriptors.SizeBeyondLimit, _spec.ClassLocation, _spec.DisplayName, "the parameter count",
                    parameterOffset.ToString("N0", System.Globalization.CultureInfo.InvariantCulture), ParameterCountWarningLimit.ToString("N0", System.Globalization.CultureInfo.InvariantCulture));
            }
            if (memory.TrainingActivationBytesPerSample > TrainingActivationBytesWarningLimit)
            {
                Report(DiagnosticDescriptors.SizeBeyondLimit, _spec.ClassLocation, _spec.DisplayName, "the training activation memory per sample",
                    FormatBytes(memory.TrainingActivationBytesPerSample), FormatBytes(TrainingActivationBytesWarningLimit));
            }

            var network = new NetworkModel(_spec.Namespace, _spec.ClassName, _spec.Accessibility, _spec.ContainingTypes,
                input0, classCount, parameterOffset, layers.ToEquatableArray(), memory);
            return Result(network);
        }

        private bool CheckInput()
        {
            bool valid = true;
            void Check(string name, int value)
            {
                if (value > 0) return;
                valid = false;
                Report(DiagnosticDescriptors.InvalidInputShape, _spec.NetworkArgumentLocation(name), _spec.DisplayName, name, value);
            }
            Check("Channels", _spec.Channels);
            Check("Height", _spec.Height);
            Check("Width", _spec.Width);
            if (valid && (long)_spec.Channels * _spec.Height * _spec.Width > int.MaxValue)
            {
                Report(DiagnosticDescriptors.TensorTooLarge, _spec.NetworkAttributeLocation, _network, "the input",
                    (long)_spec.Channels * _spec.Height * _spec.Width, int.MaxValue);
                valid = false;
            }
            return valid;
        }

        // Default names follow torchvision's AlexNet: "features.{i}" before the classifier, "classifier.{j}" from the
        // first Dropout or Dense after the last spatial layer on. Identifiers count each kind: Conv1, Relu1, Pool1...
        private (string Name, string Identifier)[] NameLayers(List<LayerSpec> body, LayerSpec? lossSpec)
        {
            int lastSpatial = -1;
            for (int i = 0; i < body.Count; i++) if (IsSpatial(body[i].Kind)) lastSpatial = i;
            int classifierStart = body.Count;
            for (int i = lastSpatial + 1; i < body.Count; i++)
            {
                if (body[i].Kind is LayerKind.Dropout or LayerKind.Dense) { classifierStart = i; break; }
            }

            var result = new (string Name, string Identifier)[body.Count + 1];
            var ordinals = new Dictionary<LayerKind, int>();
            var byName = new Dictionary<string, int>(StringComparer.Ordinal);
            var byIdentifier = new Dictionary<string, int>(StringComparer.Ordinal);
            for (int i = 0; i <= body.Count; i++)
            {
                LayerSpec? layer = i < body.Count ? body[i] : lossSpec;
                LayerKind kind = i < body.Count ? body[i].Kind : LayerKind.SoftmaxCrossEntropy;
                ordinals.TryGetValue(kind, out int ordinal);
                ordinals[kind] = ++ordinal;

                string defaultName = i == body.Count ? "loss" : i < classifierStart ? $"features.{i}" : $"classifier.{i - classifierStart}";
                string defaultIdentifier = i == body.Count ? "Loss" : IdentifierStem(kind) + ordinal;
                string name = defaultName, identifier = defaultIdentifier;
                string label = $"Layer {i} ({kind})";

                if (layer?.Name is { } given)
                {
                    string fromName = IdentifierFromName(given);
                    if (given.Trim().Length == 0)
                    {
                        Report(DiagnosticDescriptors.InvalidLayerName, layer.LocationOf("Name"), label, given, "it is empty");
                    }
                    else if (fromName.Length == 0)
                    {
                        Report(DiagnosticDescriptors.InvalidLayerName, layer.LocationOf("Name"), label, given, "it has no letter or digit to make a C# identifier from");
                    }
                    else
                    {
                        name = given;
                        identifier = fromName;
                    }
                }
                result[i] = (name, identifier);

                string fullLabel = $"Layer {i} '{name}' ({kind})";
                if (byName.TryGetValue(name, out int other))
                {
                    Report(DiagnosticDescriptors.DuplicateLayerName, layer?.LocationOf("Name"), fullLabel, "name", name, $"layer {other} ({KindAt(body, other)})");
                }
                else
                {
                    byName[name] = i;
                    if (byIdentifier.TryGetValue(identifier, out other))
                    {
                        Report(DiagnosticDescriptors.DuplicateLayerName, layer?.LocationOf("Name"), fullLabel, "C# identifier", identifier, $"layer {other} '{result[other].Name}' ({KindAt(body, other)})");
                    }
                    else
                    {
                        byIdentifier[identifier] = i;
                    }
                }
            }
            return result;
        }

        private static LayerKind KindAt(List<LayerSpec> body, int i) => i < body.Count ? body[i].Kind : LayerKind.SoftmaxCrossEntropy;

        private static string IdentifierStem(LayerKind kind) => kind switch
        {
            LayerKind.Conv2d => "Conv",
            LayerKind.MaxPool => "Pool",
            LayerKind.SoftmaxCrossEntropy => "Loss",
            _ => kind.ToString(),
        };

        /// <summary>"features.0" -> "Features0", "conv_1a" -> "Conv1a": PascalCase of the letter/digit runs, ASCII only.</summary>
        internal static string IdentifierFromName(string name)
        {
            var sb = new System.Text.StringBuilder();
            bool startOfWord = true;
            foreach (char c in name)
            {
                bool letterOrDigit = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
                if (!letterOrDigit)
                {
                    startOfWord = true;
                    continue;
                }
                sb.Append(startOfWord ? char.ToUpperInvariant(c) : c);
                startOfWord = false;
            }
            if (sb.Length > 0 && char.IsDigit(sb[0])) sb.Insert(0, "Layer");
            return sb.ToString();
        }

        private void CheckOrder(List<LayerSpec> body, Func<int, string> label)
        {
            if (body[0].Kind == LayerKind.Relu)
            {
                Report(DiagnosticDescriptors.ReluFirst, body[0].Location, label(0));
            }
            int firstDense = -1;
            for (int i = 0; i < body.Count; i++)
            {
                if (body[i].Kind == LayerKind.Dense && firstDense < 0)
                {
                    firstDense = i;
                }
                else if (firstDense >= 0 && IsSpatial(body[i].Kind))
                {
                    string dense = label(firstDense);
                    Report(DiagnosticDescriptors.SpatialLayerAfterDense, body[i].Location, label(i), char.ToLowerInvariant(dense[0]) + dense.Substring(1), body[firstDense].Units);
                }
            }
            int last = body.Count - 1;
            if (body[last].Kind != LayerKind.Dense)
            {
                Report(DiagnosticDescriptors.LastLayerNotDense, body[last].Location, _spec.DisplayName, $"layer {last} ({body[last].Kind})");
            }
        }

        // --- layers -------------------------------------------------------------------------------------------

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
            if (!Window(l, label, input, kh, kw, sh, sw, ph, pw, out int oh, out int ow)) return null;
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
            if (!Window(l, label, input, kh, kw, sh, sw, p, p, out int oh, out int ow)) return null;
            return new LayerModel(LayerKind.MaxPool, index, name.Name, name.Identifier, input, new TensorShape(input.Channels, oh, ow),
                kh, kw, sh, sw, p, p, 0, false, 0, 0, 0, 0, 0, EquatableArray<ParameterModel>.Empty);
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
                Report(DiagnosticDescriptors.DenseInFeaturesMismatch, l.LocationOf("InFeatures"), label, l.InFeatures,
                    $"[{input.Channels}, {input.Height}, {input.Width}]", inFeatures);
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
        private bool Window(LayerSpec l, string label, TensorShape input, int kh, int kw, int sh, int sw, int ph, int pw, out int oh, out int ow)
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
                Report(DiagnosticDescriptors.StrideDropsInput, l.Location, label, $"{kh}x{kw}", $"{sh}x{sw}", droppedRows, droppedColumns,
                    $"{input.Height}x{input.Width}", $"{tileH}x{tileW}");
            }
            return true;
        }

        // --- argument checks (each reports ANC0008 at the argument that set the value) -------------------------

        private bool Fail(LayerSpec l, string label, string what, string constraint, object value)
        {
            Report(DiagnosticDescriptors.ArgumentOutOfRange, l.LocationOf(what), label, what, constraint, value);
            return false;
        }

        private bool Positive(LayerSpec l, string label, string what, int value, params string[] arguments)
        {
            if (value > 0) return true;
            Report(DiagnosticDescriptors.ArgumentOutOfRange, l.LocationOf(arguments), label, what, "positive", value);
            return false;
        }

        private bool NotNegative(LayerSpec l, string label, string what, int value) => AtLeast(l, label, what, value, 0, "0 or more");

        private bool NotNegativeResolved(LayerSpec l, string label, string what, int value, params string[] arguments)
        {
            if (value >= 0) return true;
            Report(DiagnosticDescriptors.ArgumentOutOfRange, l.LocationOf(arguments), label, what, "0 or more", value);
            return false;
        }

        private bool AtLeast(LayerSpec l, string label, string what, int value, int minimum, string constraint)
        {
            if (value >= minimum) return true;
            Report(DiagnosticDescriptors.ArgumentOutOfRange, l.LocationOf(what), label, what, constraint, value);
            return false;
        }

        private bool FiniteOrUnset(LayerSpec l, string label, float biasInit)
        {
            if (!float.IsInfinity(biasInit)) return true;
            return Fail(l, label, "BiasInit", "finite", Format(biasInit));
        }

        private bool FitsInt(LayerSpec l, string label, string what, long length)
        {
            if (length <= int.MaxValue) return true;
            Report(DiagnosticDescriptors.TensorTooLarge, l.Location, label, what, length, int.MaxValue);
            return false;
        }
    }

    internal static string Format(float value) => value.ToString("R", System.Globalization.CultureInfo.InvariantCulture);

    internal static string FormatBytes(long bytes)
    {
        var ci = System.Globalization.CultureInfo.InvariantCulture;
        if (bytes >= 1L << 30) return (bytes / (double)(1L << 30)).ToString("0.##", ci) + " GiB";
        if (bytes >= 1L << 20) return (bytes / (double)(1L << 20)).ToString("0.##", ci) + " MiB";
        if (bytes >= 1L << 10) return (bytes / (double)(1L << 10)).ToString("0.#", ci) + " KiB";
        return bytes.ToString(ci) + " B";
    }
}
