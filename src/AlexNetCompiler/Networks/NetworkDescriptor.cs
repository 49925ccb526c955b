using System.Globalization;
using System.Text;

namespace AlexNetCompiler;

public enum ParameterRole { Weight, Bias }

/// <summary>One parameter tensor inside a network's flat parameter buffer.</summary>
/// <param name="Name">State-dict name (PyTorch convention), e.g. "features.0.weight".</param>
/// <param name="Shape">PyTorch shape: conv [out, in/groups, kh, kw], dense [out, in], bias [out].</param>
/// <param name="Offset">Offset in floats into the flat buffer.</param>
/// <param name="FanIn">Inputs that feed one output unit (He initialisation uses it).</param>
/// <param name="PaperBiasValue">The bias under the paper's initialisation (1 in conv2, conv4, conv5 and hidden FC layers).</param>
public sealed record ParameterDescriptor(
    string Name, int[] Shape, int Offset, int Length, ParameterRole Role, int FanIn, float PaperBiasValue)
{
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>One row of the layer table.</summary>
/// <param name="InputShape">One sample's input, CHW, or [features] once flattened (the first Dense layer's input is still CHW).</param>
/// <param name="OutputShape">One sample's output, CHW (dense: [features]).</param>
/// <param name="Details">Human-readable hyper-parameters, e.g. "k=11 s=4 p=0 g=1".</param>
/// <param name="Hyperparameters">
/// The layer's hyper-parameters, typed by kind (<see cref="Conv2dHyperparameters"/> for a Conv2d layer, and so on); null
/// for ReLU, softmax cross-entropy and adaptive average pooling, whose output size is <paramref name="OutputShape"/>.
/// </param>
public sealed record LayerDescriptor(
    int Index,
    string Name,
    string Identifier,
    LayerKind Kind,
    int[] InputShape,
    int[] OutputShape,
    long ParameterCount,
    string Details,
    LayerHyperparameters? Hyperparameters)
{
    public string ShapeText => "[" + string.Join(", ", OutputShape) + "]";
}

/// <summary>The hyper-parameters of one layer, as its attribute gave them with every default resolved.</summary>
public abstract record LayerHyperparameters;

/// <summary>A convolution: weight [out, in/groups, kh, kw], zero padding on both sides of each axis.</summary>
public sealed record Conv2dHyperparameters(
    int KernelHeight, int KernelWidth, int StrideHeight, int StrideWidth, int PaddingHeight, int PaddingWidth, int Groups, bool Bias)
    : LayerHyperparameters;

/// <summary>A max pool: -infinity padding on both sides of each axis, floor mode (PyTorch's defaults).</summary>
public sealed record MaxPoolHyperparameters(
    int KernelHeight, int KernelWidth, int StrideHeight, int StrideWidth, int PaddingHeight, int PaddingWidth)
    : LayerHyperparameters;

/// <summary>Local response normalisation: b = a / (K + Alpha * sum of a^2 over Size channels)^Beta, the paper's Alpha.</summary>
public sealed record LrnHyperparameters(int Size, float Alpha, float Beta, float K) : LayerHyperparameters;

/// <summary>Inverted dropout with drop probability P; the identity at inference.</summary>
public sealed record DropoutHyperparameters(float P) : LayerHyperparameters;

/// <summary>A fully connected layer: weight [out, in], the input flattened in C, H, W order.</summary>
public sealed record DenseHyperparameters(bool Bias) : LayerHyperparameters;

/// <summary>The compile-time memory plan, in bytes (see the generator's MemoryPlanModel for what it counts).</summary>
public sealed record MemoryPlan(
    long ParameterBytes,
    long TrainingStateBytes,
    long InferenceActivationBytesPerSample,
    long TrainingActivationBytesPerSample,
    long ConvWorkspaceBytesPerThread,
    int LargestActivationLength)
{
    /// <summary>Peak bytes of an inference pass at this batch: parameters + activations + workspace.</summary>
    public long InferencePeakBytes(int batch, int threads) =>
        ParameterBytes + batch * InferenceActivationBytesPerSample + threads * ConvWorkspaceBytesPerThread;

    /// <summary>Peak bytes of a training step: parameters, gradients and momentum + activations + workspace.</summary>
    public long TrainingPeakBytes(int batch, int threads) =>
        ParameterBytes + TrainingStateBytes + batch * TrainingActivationBytesPerSample + threads * ConvWorkspaceBytesPerThread;
}

/// <summary>Everything the generator knows about a network, available at run time without reflection.</summary>
public sealed record NetworkDescriptor(
    string Name,
    int InputChannels,
    int InputHeight,
    int InputWidth,
    int ClassCount,
    long ParameterCount,
    IReadOnlyList<LayerDescriptor> Layers,
    IReadOnlyList<ParameterDescriptor> Parameters,
    MemoryPlan Memory)
{
    public int InputLength => InputChannels * InputHeight * InputWidth;

    /// <summary>A model summary in the style of torchinfo: one row per layer, then totals and the memory plan.</summary>
    public string ToSummary(int batch = 1, int threads = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batch, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        var ci = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(ci, $"{Name}: input [{InputChannels}, {InputHeight}, {InputWidth}], {ClassCount} classes");
        int nameWidth = Math.Max(12, Layers.Count == 0 ? 0 : Layers.Max(l => l.Name.Length));
        int layerWidth = Math.Max(20, Layers.Count == 0 ? 0 : Layers.Max(l => LayerText(l).Length));
        string header = string.Format(ci, "{0,-3} {1,-" + nameWidth + "} {2,-" + layerWidth + "} {3,-18} {4,14}  {5}", "#", "name", "layer", "output", "parameters", "details");
        sb.AppendLine(header);
        sb.AppendLine(new string('-', header.Length + 12));
        foreach (LayerDescriptor l in Layers)
        {
            sb.AppendLine(string.Format(ci, "{0,-3} {1,-" + nameWidth + "} {2,-" + layerWidth + "} {3,-18} {4,14:N0}  {5}",
                l.Index, l.Name, LayerText(l), l.ShapeText, l.ParameterCount, l.Details));
        }
        sb.AppendLine(new string('-', header.Length + 12));
        sb.AppendLine(ci, $"Parameters: {ParameterCount:N0} ({FormatBytes(Memory.ParameterBytes)})");
        sb.AppendLine(ci, $"Activations per sample: inference {FormatBytes(Memory.InferenceActivationBytesPerSample)}, training {FormatBytes(Memory.TrainingActivationBytesPerSample)}");
        sb.AppendLine(ci, $"Conv workspace per thread: {FormatBytes(Memory.ConvWorkspaceBytesPerThread)}");
        sb.AppendLine(ci, $"Peak at batch {batch}, {threads} thread(s): inference {FormatBytes(Memory.InferencePeakBytes(batch, threads))}, training {FormatBytes(Memory.TrainingPeakBytes(batch, threads))}");
        return sb.ToString();
    }

    private static string LayerText(LayerDescriptor l) => l.Identifier + " (" + l.Kind + ")";

    public static string FormatBytes(long bytes)
    {
        var ci = CultureInfo.InvariantCulture;
        if (bytes >= 1L << 30) return (bytes / (double)(1L << 30)).ToString("0.00", ci) + " GiB";
        if (bytes >= 1L << 20) return (bytes / (double)(1L << 20)).ToString("0.00", ci) + " MiB";
        if (bytes >= 1L << 10) return (bytes / (double)(1L << 10)).ToString("0.0", ci) + " KiB";
        return bytes.ToString(ci) + " B";
    }
}
