// Shared by the generator and the runtime (src/Common/README.md).
#if ALEXNET_GENERATOR
namespace AlexNetCompiler.Generators.Model;
#else
namespace AlexNetCompiler;
#endif

/// <summary>
/// The values an attribute argument has when it is left out. The attributes initialise their properties from these
/// and the generator's parser starts every layer from them, so a default cannot differ between the two.
/// </summary>
internal static class LayerDefaults
{
    /// <summary>[Network] input channels (RGB).</summary>
    public const int NetworkChannels = 3;

    /// <summary>Conv2d stride.</summary>
    public const int ConvStride = 1;

    /// <summary>MaxPool stride: 0 means equal to the kernel (PyTorch's default).</summary>
    public const int PoolStride = 0;

    /// <summary>Per-axis padding: -1 means "as Padding".</summary>
    public const int AxisPadding = -1;

    public const int Groups = 1;
    public const bool Bias = true;

    /// <summary>Bias under the paper's initialisation: NaN follows the paper (1 in conv2, 4, 5 and hidden Dense layers, else 0).</summary>
    public const float BiasInit = float.NaN;

    /// <summary>LRN (Krizhevsky et al. 2012, section 3.3: n = 5, alpha = 1e-4, beta = 0.75, k = 2).</summary>
    public const int LrnSize = 5;
    public const float LrnAlpha = 1e-4f;
    public const float LrnBeta = 0.75f;
    public const float LrnK = 2f;
}
