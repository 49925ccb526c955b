using AlexNetCompiler.Generators.Model;

namespace AlexNetCompiler.Generators.Lowering;

// How a network runs on one backend, decided once by the Lowerer and only printed by the emitters: the stages
// (layers after fusion) in order, where each stage reads and writes, and the buffers behind those names. Plain
// equatable records, like the model.

/// <summary>What one stage runs. An LrnPool stage has an LRN, a max pool, or (fused) both.</summary>
internal enum StageKind { Conv, Dense, LrnPool, Relu, Dropout, AvgPool }

/// <summary>How a backend names its buffers: "conv1Output" (C# locals) or "conv1_out" (CUDA plan names).</summary>
internal enum BufferNaming { CamelCase, SnakeCase }

/// <summary>
/// What a backend fuses and how it names buffers. The rules that follow from a backend's kernels live here, so the
/// lowering (and nothing else) applies them.
/// </summary>
/// <param name="FusesLrnIntoPool">An LRN followed by a max pool is one stage (one kernel pair).</param>
/// <param name="FusesDropoutIntoDense">A dropout followed by a Dense is applied inside the Dense's GEMM.</param>
/// <param name="ReluRunsInPlace">A standalone ReLU overwrites its input (except after an LRN, whose backward reads LRN's output).</param>
/// <param name="KeepsLrnScale">The LRN's scale is kept for backward (else backward recomputes it).</param>
/// <param name="OnDevice">
/// The buffers live in device memory: the plan also holds the labels, per-sample losses and the optimizer's velocity,
/// and its gradient buffers need only fit the stages' outputs. A host backend gets labels from the caller, leaves the
/// velocity to its optimizer, keeps the softmax probabilities, and sizes its gradient buffers over every layer and the input.
/// </param>
/// <param name="UpdatesDenseWeightsInBackward">
/// In a training step, a Dense stage's backward also applies the optimizer's update to its weight (in the same pass
/// over the weights at a small batch), so the step's own update leaves those weights out.
/// </param>
/// <param name="CachesPreparedConvWeights">
/// A conv stage's inference pass keeps its weights' prepared form (packed, or Winograd-transformed) between calls, in a
/// cache of its own that checks the weights are unchanged.
/// </param>
internal sealed record Backend(string Name, BufferNaming Naming, bool FusesLrnIntoPool, bool FusesDropoutIntoDense, bool ReluRunsInPlace, bool KeepsLrnScale,
    bool OnDevice, bool UpdatesDenseWeightsInBackward, bool CachesPreparedConvWeights)
{
    /// <summary>One kernel pair per layer (ReLU in the conv/dense epilogue), buffers as C# fields.</summary>
    public static readonly Backend Cpu = new("cpu", BufferNaming.CamelCase, FusesLrnIntoPool: false, FusesDropoutIntoDense: false, ReluRunsInPlace: true, KeepsLrnScale: true, OnDevice: false,
        UpdatesDenseWeightsInBackward: true, CachesPreparedConvWeights: true);

    /// <summary>Fused kernels: ReLU into conv/dense, LRN into the pool after it, dropout into the Dense after it.</summary>
    public static readonly Backend Cuda = new("cuda", BufferNaming.SnakeCase, FusesLrnIntoPool: true, FusesDropoutIntoDense: true, ReluRunsInPlace: false, KeepsLrnScale: false, OnDevice: true,
        UpdatesDenseWeightsInBackward: false, CachesPreparedConvWeights: false);
}

/// <summary>
/// One stage: a conv or dense (with the ReLU after it and, on CUDA, the dropout before a dense), an LRN and/or max
/// pool, a standalone ReLU, a standalone dropout, or an adaptive average pool.
/// </summary>
/// <param name="Name">The stage's name in generated code ("conv1", "lrn1_pool1").</param>
/// <param name="Layer">The layer the stage is built around: the conv, dense, ReLU or dropout; the LRN of an LrnPool, else its pool.</param>
/// <param name="FusedRelu">The ReLU layer applied in this conv/dense stage's epilogue, when there is one.</param>
/// <param name="Dropout">The dropout applied to a Dense stage's input, or the layer of a Dropout stage.</param>
/// <param name="Input">Name of the buffer the stage reads ("input" for the first).</param>
/// <param name="Output">Name of the buffer it writes; the input's name when it runs in place.</param>
/// <param name="OwnsOutput">False when the stage runs in place on its input (a ReLU on the CPU).</param>
/// <param name="Scale">The LRN's kept scale (CPU), else null.</param>
/// <param name="Argmax">The pool's argmax buffer (int32), else null.</param>
/// <param name="ForwardFlops">Floating-point operations of the forward pass per sample (GEMM stages; 0 for the rest).</param>
/// <param name="UpdatesWeightInBackward">A training step applies the optimizer's update to this stage's weight in its backward.</param>
/// <param name="WeightCache">The conv stage's cache of prepared weights for its inference pass, else null.</param>
internal sealed record PlanStage(
    StageKind Kind,
    string Name,
    LayerModel Layer,
    LayerModel? FusedRelu,
    LayerModel? Lrn,
    LayerModel? Pool,
    LayerModel? Dropout,
    string Input,
    string Output,
    bool OwnsOutput,
    string? Scale,
    string? Argmax,
    TensorShape InputShape,
    TensorShape OutputShape,
    long ForwardFlops,
    bool UpdatesWeightInBackward = false,
    string? WeightCache = null)
{
    /// <summary>A ReLU runs in this conv/dense stage's epilogue.</summary>
    public bool Relu => FusedRelu is not null;

    public bool HasArgmax => Argmax is not null;

    /// <summary>
    /// Elements per sample of the tensor a dropout mask of this stage covers (the Dense's input, or a Dropout stage's
    /// tensor): a shard of a batch that starts at sample s draws the mask from element s x this on.
    /// </summary>
    public long DropoutSampleLength => InputShape.Length;
}

/// <summary>What a buffer holds, for the memory plan.</summary>
internal enum BufferRole
{
    /// <summary>The network's input (the caller's on the CPU).</summary>
    Input,
    /// <summary>A stage's output, kept for backward in training.</summary>
    Activation,
    /// <summary>What a stage keeps for its backward besides its output: LRN's scale, the pool's argmax.</summary>
    Saved,
    /// <summary>Labels, per-sample losses, softmax probabilities.</summary>
    Loss,
    /// <summary>The two ping-pong buffers of the activations' gradient.</summary>
    Gradient,
    /// <summary>Parameters, their gradients and the optimizer's velocity (fixed size).</summary>
    State,
}

/// <summary>A buffer of the plan: PerSample * batch + Fixed elements of 4 bytes (float, or int when IsInt32).</summary>
internal sealed record PlanBuffer(string Name, long PerSample, long Fixed, bool IsInt32, BufferRole Role);

/// <summary>The stages and buffers of one network on one backend.</summary>
/// <param name="Buffers">Every buffer a training pass uses, in allocation order; the first is the network's input.</param>
/// <param name="Logits">The buffer the last stage writes.</param>
/// <param name="GradientA">The first gradient ping-pong buffer (the loss writes dLogits there); GradientB the other.</param>
internal sealed record ExecutionPlan(
    Backend Backend,
    EquatableArray<PlanStage> Stages,
    EquatableArray<PlanBuffer> Buffers,
    string Logits,
    string GradientA,
    string GradientB)
{
    public PlanBuffer Buffer(string name)
    {
        foreach (PlanBuffer b in Buffers)
        {
            if (b.Name == name) return b;
        }
        throw new System.InvalidOperationException($"The {Backend.Name} plan has no buffer '{name}'.");
    }
}
