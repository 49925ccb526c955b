using AlexNetCompiler.Generators.Model;

namespace AlexNetCompiler.Generators.Emitters;

/// <summary>
/// Emits the compute half of a network class for the CPU backend: buffers from the memory plan, Forward,
/// ForwardBackward and TrainStep, one forward/backward pair per layer calling AlexNetCompiler.Cpu kernels.
/// </summary>
internal static partial class CpuEmitter
{
    /// <summary>Returns the source of "{HintPrefix}.Cpu.g.cs", or null when there is nothing to emit yet.</summary>
    public static string? Emit(NetworkModel model) => null;
}
