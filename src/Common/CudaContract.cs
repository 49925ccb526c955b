// Shared by the generator and the runtime (src/Common/README.md).
#if ALEXNET_GENERATOR
namespace AlexNetCompiler.Generators;
#else
namespace AlexNetCompiler.Cuda;
#endif

/// <summary>What a generated CUDA source and launch plan and the runtime that compiles and runs them agree on.</summary>
internal static class CudaContract
{
    /// <summary>The header every generated source includes; the runtime hands its text to NVRTC under this name.</summary>
    public const string PreludeHeaderName = "alexnet_prelude.cuh";

    /// <summary>
    /// ALEXNET_PRELUDE_VERSION: generated sources stop with an #error when the prelude they include is another
    /// version (a generator and runtime from different packages). Raise it whenever a template is added or its parameters change.
    /// </summary>
    public const int PreludeVersion = 4;

    /// <summary>ALEXNET_THREADS: threads per block of every kernel, the generated grids' divisor.</summary>
    public const int ThreadsPerBlock = 256;

    /// <summary>Device buffers of every network, by the names the launch plan gives them.</summary>
    public const string InputBuffer = "input", LabelsBuffer = "labels", LossesBuffer = "losses";
    public const string ParametersBuffer = "params", GradientsBuffer = "grads", VelocityBuffer = "velocity";
}
