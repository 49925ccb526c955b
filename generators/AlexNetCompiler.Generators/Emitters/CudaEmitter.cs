using AlexNetCompiler.Generators.Model;

namespace AlexNetCompiler.Generators.Emitters;

/// <summary>
/// Emits the CUDA C source of a network's fused kernels, specialised for its exact shapes
/// (see docs/cuda.md), and the C# that exposes it as a constant.
/// </summary>
internal static partial class CudaEmitter
{
    /// <summary>Returns the source of "{HintPrefix}.Cuda.g.cs", or null when there is nothing to emit yet.</summary>
    public static string? Emit(NetworkModel model) => null;
}
