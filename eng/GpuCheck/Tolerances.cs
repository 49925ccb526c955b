using System.Text.Json.Nodes;

namespace GpuCheck;

/// <summary>What a compared tensor is, which decides its tolerance.</summary>
internal enum TensorRole { Output, Gradient, SgdStep }

/// <summary>
/// The relative L2 error ||gpu - cpu|| / ||cpu|| allowed per tensor. The GPU sums in another order than the CPU
/// (tiled GEMMs, atomics over reduction chunks), so element-wise equality is not expected.
///
/// FP32: float32 rounding over reductions of up to 387,200 terms stays near 1e-6..1e-5 relative (measured on the
/// CUDA emulator: 1e-6..3e-6 for every tensor); 1e-4 leaves headroom but catches any indexing fault (those give
/// errors of order 1). Each SGD step's parameter change and the momentum buffer after five steps: 1e-3.
///
/// TF32 rounds every GEMM input to a 10-bit mantissa, and a ReLU or max pool whose inputs lie within that rounding
/// of a decision flips, moving a whole element; a fraction f of flipped elements alone gives a relative error near
/// sqrt(f). How large that is depends on the network and its data, not on the implementation, so the tolerance is
/// set from arithmetic measured in the same run: PyTorch computes the same network, weights, batch and dropout
/// masks once in FP32 and once with TF32 (cuDNN and cuBLAS), and our TF32 error against the CPU backend may be at
/// most <see cref="TorchMultiple"/> times PyTorch's own TF32-vs-FP32 error for that tensor (never below the FP32
/// tolerance). Four: the two implementations round differently (ours rounds to nearest with cvt.rna once per
/// element; cuBLAS and cuDNN may truncate, and choose per layer which algorithms use tensor cores), and a factor
/// of 4 in relative error is a factor of 16 in the fraction of flipped decisions, while an indexing fault stays of
/// order 1. Without PyTorch's figures (no PyTorch, or the emulator) the fixed TF32 tolerances of the emulator
/// tests apply: 1e-2 for logits and loss, 1e-1 per gradient and per step (measured there: up to 6.6e-2).
/// </summary>
internal sealed class Tolerances
{
    public const double Fp32Output = 1e-4, Fp32Gradient = 1e-4, Fp32Step = 1e-3;
    public const double FixedTf32Output = 1e-2, FixedTf32Gradient = 1e-1, FixedTf32Step = 1e-1;
    public const double TorchMultiple = 4;

    private readonly JsonObject? _torchErrors; // tf32_vs_fp32 of eng/pytorch_reference.py's JSON

    private Tolerances(JsonObject? torchErrors) => _torchErrors = torchErrors;

    public static Tolerances Fixed { get; } = new(null);

    /// <summary>Reads PyTorch's TF32-vs-FP32 errors from eng/pytorch_reference.py's JSON, when the file exists and has them.</summary>
    public static Tolerances FromTorchResults(string? path, out string note)
    {
        if (path is null || !File.Exists(path))
        {
            note = $"no PyTorch results{(path is null ? "" : $" at {path}")}: fixed TF32 tolerances";
            return Fixed;
        }
        try
        {
            if (JsonNode.Parse(File.ReadAllText(path))?["tf32_vs_fp32"] is JsonObject errors && errors.Count > 0)
            {
                note = $"TF32 tolerances: {TorchMultiple}x PyTorch's TF32-vs-FP32 error per tensor ({path}: {string.Join(", ", errors.Select(e => e.Key))})";
                return new Tolerances(errors);
            }
            note = $"{path} has no TF32-vs-FP32 errors: fixed TF32 tolerances";
        }
        catch (System.Text.Json.JsonException e)
        {
            note = $"{path} is not valid JSON ({e.Message}): fixed TF32 tolerances";
        }
        return Fixed;
    }

    /// <summary>
    /// The tolerance for one tensor of one network ("logits", "loss", "gradient features.0.weight", "sgd_step_worst",
    /// "momentum": the names eng/pytorch_reference.py uses), PyTorch's error when one was used, and where it came from.
    /// </summary>
    public (double Tolerance, double? TorchError, string Source) For(string network, bool tf32, string tensor, TensorRole role)
    {
        double fp32 = role switch { TensorRole.Output => Fp32Output, TensorRole.Gradient => Fp32Gradient, _ => Fp32Step };
        if (!tf32) return (fp32, null, "fp32");
        if (_torchErrors?[network]?[tensor] is JsonValue value && value.TryGetValue(out double torchError) && double.IsFinite(torchError))
            return (Math.Max(fp32, TorchMultiple * torchError), torchError, $"{TorchMultiple}x pytorch");
        double fixedTf32 = role switch { TensorRole.Output => FixedTf32Output, TensorRole.Gradient => FixedTf32Gradient, _ => FixedTf32Step };
        return (fixedTf32, null, "fixed");
    }
}
