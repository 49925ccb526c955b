using System;

namespace AlexNetCompiler.Generators.Model;

// The generator's model: plain immutable records with value equality. No ISymbol, SyntaxNode,
// Location or Compilation is held here (only LocationInfo, which compares by value), so that the
// incremental pipeline can cache every step.

// LayerKind is shared with the runtime: src/Common/LayerKind.cs.

/// <summary>One sample's tensor shape. Dense outputs are (Features, 1, 1).</summary>
internal readonly record struct TensorShape(int Channels, int Height, int Width)
{
    public int Length => Channels * Height * Width;
    public override string ToString() => Height == 1 && Width == 1 ? $"[{Channels}]" : $"[{Channels}, {Height}, {Width}]";
}

/// <summary>Which initial value a parameter tensor receives.</summary>
internal enum ParameterRole { Weight, Bias }

/// <summary>One parameter tensor in the flat parameter buffer.</summary>
/// <param name="Name">State-dict name, e.g. "features.0.weight".</param>
/// <param name="Identifier">C# identifier stem, e.g. "Conv1Weight".</param>
/// <param name="Shape">PyTorch shape: conv [out, in/groups, kh, kw]; dense [out, in]; bias [out].</param>
/// <param name="Offset">Offset, in floats, into the flat parameter buffer.</param>
/// <param name="FanIn">Inputs feeding one output (for He init): in/groups*kh*kw or in features.</param>
/// <param name="PaperBiasValue">Bias value under the paper's init (0 or 1, or the user's BiasInit); 0 for weights.</param>
internal sealed record ParameterModel(
    string Name,
    string Identifier,
    EquatableArray<int> Shape,
    int Offset,
    int Length,
    ParameterRole Role,
    int FanIn,
    float PaperBiasValue);

/// <summary>
/// One layer with every shape resolved. Fields that do not apply to a kind hold 0 (or defaults).
/// Flattened is true from the first Dense layer on (its input is flattened in C, H, W order).
/// The last layer is always SoftmaxCrossEntropy (written or implied), named "loss".
/// </summary>
internal sealed record LayerModel(
    LayerKind Kind,
    int Index,
    string Name,
    string Identifier,
    TensorShape Input,
    TensorShape Output,
    int KernelHeight,
    int KernelWidth,
    int StrideHeight,
    int StrideWidth,
    int PaddingHeight,
    int PaddingWidth,
    int Groups,
    bool HasBias,
    int LrnSize,
    float LrnAlpha,
    float LrnBeta,
    float LrnK,
    float DropoutP,
    EquatableArray<ParameterModel> Parameters,
    bool Flattened = false)
{
    /// <summary>Parameters of this layer (weight and bias), in floats.</summary>
    public long ParameterCount
    {
        get
        {
            long count = 0;
            foreach (ParameterModel p in Parameters) count += p.Length;
            return count;
        }
    }

    /// <summary>
    /// The slice of the flat parameter (and gradient) buffer that this layer's tensors occupy: weight then bias, adjacent.
    /// Length 0 for a layer without parameters.
    /// </summary>
    public (int Offset, int Length) ParameterRange
    {
        get
        {
            if (Parameters.Length == 0) return (0, 0);
            int start = int.MaxValue, end = 0;
            foreach (ParameterModel p in Parameters)
            {
                start = System.Math.Min(start, p.Offset);
                end = System.Math.Max(end, p.Offset + p.Length);
            }
            return (start, end - start);
        }
    }

    /// <summary>The layer's weight or bias tensor, or null when it has none (a layer without bias).</summary>
    public ParameterModel? FindParameter(ParameterRole role)
    {
        foreach (ParameterModel p in Parameters)
        {
            if (p.Role == role) return p;
        }
        return null;
    }

    /// <summary>The output shape as the layer table shows it: [C, H, W], or [features] once flattened.</summary>
    public string OutputText => Flattened ? $"[{Output.Length}]" : $"[{Output.Channels}, {Output.Height}, {Output.Width}]";
}

/// <summary>
/// Compile-time memory plan, in bytes. Per-sample numbers scale with the batch; the rest are fixed.
/// Training keeps every layer's output (ReLU in place or fused; after LRN its own buffer), LRN's scale, max-pool's argmax (int32),
/// dropout's output (its mask is recomputed from the seed), the softmax probabilities, and two ping-pong
/// gradient buffers of the largest activation. Inference needs only two ping-pong activation buffers.
/// </summary>
internal sealed record MemoryPlanModel(
    long ParameterBytes,
    long TrainingStateBytes,
    long InferenceActivationBytesPerSample,
    long TrainingActivationBytesPerSample,
    long ConvWorkspaceBytesPerThread,
    int LargestActivationLength);

/// <summary>A containing type of a nested network class (must be partial).</summary>
internal sealed record ContainingTypeModel(string Keyword, string Name);

/// <summary>Everything the emitters need for one [Network] class.</summary>
internal sealed record NetworkModel(
    string Namespace,
    string ClassName,
    string Accessibility,
    EquatableArray<ContainingTypeModel> ContainingTypes,
    TensorShape Input,
    int ClassCount,
    long ParameterCount,
    EquatableArray<LayerModel> Layers,
    MemoryPlanModel Memory)
{
    /// <summary>Namespace, containing types and class name, e.g. "CanonicalAlexNet.AlexNet2012".</summary>
    public string FullName
    {
        get
        {
            var name = new System.Text.StringBuilder(Namespace);
            foreach (ContainingTypeModel outer in ContainingTypes)
            {
                if (name.Length > 0) name.Append('.');
                name.Append(outer.Name);
            }
            if (name.Length > 0) name.Append('.');
            return name.Append(ClassName).ToString();
        }
    }

    /// <summary>Prefix of the generated files' hint names: the full name, without the '@' of escaped keywords.</summary>
    public string HintPrefix => FullName.Replace("@", "");
}
