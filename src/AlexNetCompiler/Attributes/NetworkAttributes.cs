namespace AlexNetCompiler;

// The layer spec. A network is a `partial class` carrying [Network] and then one attribute per layer,
// in the order the layers run. The generator (AlexNetCompiler.Generators) reads these attributes at
// compile time; nothing here is read by reflection at run time.
//
// Every layer accepts an optional Name: the prefix of its parameters in the state dict
// ("features.0" gives "features.0.weight"). Left out, names follow torchvision's AlexNet:
// layers before the classifier are "features.{i}", the rest "classifier.{j}", counted over all layers.

/// <summary>Marks a partial class as a network and gives its input shape (one sample, CHW).</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class NetworkAttribute : Attribute
{
    /// <summary>Input channels (3 for RGB, 1 for grey scale).</summary>
    public int Channels { get; set; } = LayerDefaults.NetworkChannels;
    /// <summary>Input height in pixels.</summary>
    public int Height { get; set; }
    /// <summary>Input width in pixels.</summary>
    public int Width { get; set; }
}

/// <summary>Base of every layer attribute.</summary>
public abstract class LayerAttribute : Attribute
{
    /// <summary>State-dict prefix of this layer's parameters; null follows the torchvision convention.</summary>
    public string? Name { get; set; }
}

/// <summary>2-D convolution, NCHW, weight [out, in/groups, kh, kw] as in PyTorch.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class Conv2dAttribute : LayerAttribute
{
    public Conv2dAttribute(int outChannels) => OutChannels = outChannels;
    public int OutChannels { get; }
    /// <summary>Square kernel size; KernelHeight/KernelWidth override one side.</summary>
    public int Kernel { get; set; }
    public int KernelHeight { get; set; }
    public int KernelWidth { get; set; }
    public int Stride { get; set; } = LayerDefaults.ConvStride;
    public int StrideHeight { get; set; }
    public int StrideWidth { get; set; }
    public int Padding { get; set; }
    public int PaddingHeight { get; set; } = LayerDefaults.AxisPadding;
    public int PaddingWidth { get; set; } = LayerDefaults.AxisPadding;
    public int Groups { get; set; } = LayerDefaults.Groups;
    public bool Bias { get; set; } = LayerDefaults.Bias;
    /// <summary>Bias value under the paper's initialisation; NaN follows the paper (1 for conv2, conv4, conv5, else 0).</summary>
    public float BiasInit { get; set; } = LayerDefaults.BiasInit;
}

/// <summary>Rectified linear unit, max(0, x). Fused into the preceding conv/dense epilogue where possible.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class ReluAttribute : LayerAttribute { }

/// <summary>
/// Cross-channel local response normalisation (Krizhevsky et al. 2012, section 3.3):
/// b_c = a_c / (K + Alpha * sum_{c' in window of Size} a_c'^2)^Beta.
/// Alpha is the paper's alpha (applied to the plain sum). PyTorch's LocalResponseNorm divides its alpha
/// by size, so the equivalent torch module is LocalResponseNorm(Size, Alpha * Size, Beta, K).
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class LrnAttribute : LayerAttribute
{
    public int Size { get; set; } = LayerDefaults.LrnSize;
    public float Alpha { get; set; } = LayerDefaults.LrnAlpha;
    public float Beta { get; set; } = LayerDefaults.LrnBeta;
    public float K { get; set; } = LayerDefaults.LrnK;
}

/// <summary>Max pooling; kernel 3 stride 2 is the paper's overlapping pool. Padding is -infinity, floor mode.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class MaxPoolAttribute : LayerAttribute
{
    public MaxPoolAttribute(int kernel) => Kernel = kernel;
    public int Kernel { get; }
    public int KernelHeight { get; set; }
    public int KernelWidth { get; set; }
    /// <summary>Stride; 0 means equal to the kernel (PyTorch's default).</summary>
    public int Stride { get; set; } = LayerDefaults.PoolStride;
    public int StrideHeight { get; set; }
    public int StrideWidth { get; set; }
    public int Padding { get; set; }
}

/// <summary>
/// Adaptive average pooling to a fixed output size (torchvision AlexNet's AdaptiveAvgPool2d((6, 6))): output cell
/// (i, j) averages input rows floor(i * H / OH) to ceil((i + 1) * H / OH) - 1 and the columns likewise, PyTorch's
/// bins. Where the input already has the output size it is the identity, and no kernel runs.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class AdaptiveAvgPoolAttribute : LayerAttribute
{
    public AdaptiveAvgPoolAttribute(int outputSize) => OutputSize = outputSize;
    /// <summary>Square output size; OutputHeight/OutputWidth override one side.</summary>
    public int OutputSize { get; }
    public int OutputHeight { get; set; }
    public int OutputWidth { get; set; }
}

/// <summary>Inverted dropout: in training each element is zeroed with probability P and the rest scaled by 1/(1-P).</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class DropoutAttribute : LayerAttribute
{
    public DropoutAttribute(float p) => P = p;
    public float P { get; }
}

/// <summary>Fully connected layer; the input is flattened in C, H, W order (PyTorch's flatten).</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class DenseAttribute : LayerAttribute
{
    public DenseAttribute(int outFeatures) => OutFeatures = outFeatures;
    public int OutFeatures { get; }
    /// <summary>Optional check: the flattened input size this layer expects (0 = infer).</summary>
    public int InFeatures { get; set; }
    public bool Bias { get; set; } = LayerDefaults.Bias;
    /// <summary>Bias value under the paper's initialisation; NaN follows the paper (1 in hidden layers, 0 in the last).</summary>
    public float BiasInit { get; set; } = LayerDefaults.BiasInit;
}

/// <summary>
/// The loss head: softmax cross-entropy over the last Dense layer's outputs. Optional, and implied when
/// left out; if written it must be the last attribute.
/// </summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = true, Inherited = false)]
public sealed class SoftmaxCrossEntropyAttribute : LayerAttribute { }
