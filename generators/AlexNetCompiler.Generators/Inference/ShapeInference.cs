using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using AlexNetCompiler.Generators.Diagnostics;
using AlexNetCompiler.Generators.Lowering;
using AlexNetCompiler.Generators.Model;

namespace AlexNetCompiler.Generators.Inference;

/// <summary>
/// Turns a parsed <see cref="NetworkSpec"/> into a <see cref="NetworkModel"/>: checks the layer order and every
/// argument, names the layers, infers each output shape and lays out the flat parameter buffer; the memory plan
/// comes from the CPU backend's lowering. Reports what is wrong as diagnostics; the model is null when any of them
/// is an error. One file per responsibility: this one drives the layers in order, ShapeInference.Naming names them,
/// .LayerOrder checks their order, .Layers applies each kind's shape and parameter rules, .ArgumentChecks checks
/// single arguments.
/// </summary>
internal static partial class ShapeInference
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

    private static bool IsSpatial(LayerKind kind) => kind is LayerKind.Conv2d or LayerKind.Lrn or LayerKind.MaxPool or LayerKind.AdaptiveAvgPool;

    private sealed partial class Builder
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

        /// <summary>ANC0013 reports (index in _diagnostics, layer index), which get the input fix once every layer is known.</summary>
        private readonly List<(int Diagnostic, int Layer)> _strideDrops = new();

        private void Report(Microsoft.CodeAnalysis.DiagnosticDescriptor descriptor, LocationInfo? location, params object[] arguments) =>
            _diagnostics.Add(DiagnosticInfo.Create(descriptor, location ?? _spec.ClassLocation, arguments));

        /// <summary>Reports a diagnostic with the data its code fix needs (DiagnosticPropertyNames).</summary>
        private void ReportFixable(Microsoft.CodeAnalysis.DiagnosticDescriptor descriptor, LocationInfo? location, DiagnosticProperty[] properties,
            params object[] arguments) =>
            _diagnostics.Add(DiagnosticInfo.Create(descriptor, location ?? _spec.ClassLocation, arguments) with { Properties = properties.ToEquatableArray() });

        private bool HasErrors()
        {
            foreach (DiagnosticInfo d in _diagnostics)
            {
                if (d.Severity == Microsoft.CodeAnalysis.DiagnosticSeverity.Error) return true;
            }
            return false;
        }

        private NetworkResult Result(NetworkModel? model) =>
            new(HasErrors() ? null : model, _spec.DisplayName, _diagnostics.ToEquatableArray(), UserMemberNames());

        private EquatableArray<UserMemberName> UserMemberNames()
        {
            var names = new List<UserMemberName>(_spec.Members.Length);
            foreach (UserMember member in _spec.Members) names.Add(member.Name);
            return names.ToEquatableArray();
        }

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
                    case LayerKind.AdaptiveAvgPool:
                        model = AdaptiveAvgPool(layer, label, input, known && !flattened, names[i], i);
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

            if (known && _strideDrops.Count > 0) AddTilingInputs(body, layers);
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

        /// <summary>
        /// Adds the input fix to the ANC0013 reports of the layers that the network input reaches (those before the
        /// first AdaptiveAvgPool or Dense, whose output size is fixed): the smallest input, at least the current on each
        /// side, at which none of those layers drops real input. One size for the whole network, so fixing every
        /// report at once changes the input once.
        /// </summary>
        private void AddTilingInputs(List<LayerSpec> body, List<LayerModel> layers)
        {
            // A fix that changes the size of the feature map must not break a Dense layer's explicit InFeatures
            // (ANC0015): a padding fix is withdrawn, and no input fix offered, where one would reach it.
            bool FixedFeaturesAfter(int layer)
            {
                for (int j = layer + 1; j < body.Count; j++)
                {
                    if (body[j].Kind == LayerKind.AdaptiveAvgPool) return false;
                    if (body[j].Kind == LayerKind.Dense) return body[j].InFeatures > 0;
                }
                return false;
            }
            foreach ((int diagnostic, int layer) in _strideDrops)
            {
                if (!FixedFeaturesAfter(layer)) continue;
                DiagnosticInfo info = _diagnostics[diagnostic];
                _diagnostics[diagnostic] = info with
                {
                    Properties = info.Properties.Items.Where(p => p.Name != DiagnosticPropertyNames.TilingPaddingArguments).ToEquatableArray(),
                };
            }
            if (FixedFeaturesAfter(-1)) return;

            int reached = body.FindIndex(l => l.Kind is LayerKind.AdaptiveAvgPool or LayerKind.Dense);
            if (reached < 0) reached = body.Count;
            int height = TilingInputSize(_spec.Height, layers, height: true);
            int width = TilingInputSize(_spec.Width, layers, height: false);
            if (height == 0 || width == 0 || (height == _spec.Height && width == _spec.Width)) return;
            var inputProperties = new[]
            {
                new DiagnosticProperty(DiagnosticPropertyNames.TilingInputHeight, height.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                new DiagnosticProperty(DiagnosticPropertyNames.TilingInputWidth, width.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            };
            foreach ((int diagnostic, int layer) in _strideDrops)
            {
                if (layer >= reached) continue;
                DiagnosticInfo info = _diagnostics[diagnostic];
                _diagnostics[diagnostic] = info with { Properties = info.Properties.Items.AddRange(inputProperties).ToEquatableArray() };
            }
        }

        /// <summary>How far the input-size search goes: the tiling sizes recur every product of the strides, which
        /// this covers for any plausible network.</summary>
        private const int TilingInputSearchLimit = 1 << 16;

        /// <summary>The smallest input size along one axis, at least <paramref name="current"/>, at which no window layer
        /// the input reaches drops real input; 0 if none is found within <see cref="TilingInputSearchLimit"/>.</summary>
        private static int TilingInputSize(int current, List<LayerModel> layers, bool height)
        {
            for (long candidate = current; candidate < (long)current + TilingInputSearchLimit && candidate <= int.MaxValue; candidate++)
            {
                if (Tiles(candidate, layers, height)) return (int)candidate;
            }
            return 0;
        }

        private static bool Tiles(long size, List<LayerModel> layers, bool height)
        {
            foreach (LayerModel layer in layers)
            {
                if (layer.Kind is LayerKind.AdaptiveAvgPool or LayerKind.Dense) return true;
                if (layer.Kind is not (LayerKind.Conv2d or LayerKind.MaxPool)) continue;
                int kernel = height ? layer.KernelHeight : layer.KernelWidth;
                int stride = height ? layer.StrideHeight : layer.StrideWidth;
                int padding = height ? layer.PaddingHeight : layer.PaddingWidth;
                long padded = size + 2L * padding;
                if (kernel > padded || DroppedRealInput(size, kernel, stride, padding) > 0) return false;
                size = (padded - kernel) / stride + 1;
            }
            return true;
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
