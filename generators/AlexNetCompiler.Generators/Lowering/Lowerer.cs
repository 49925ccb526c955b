using System;
using System.Collections.Generic;
using System.Text;
using AlexNetCompiler.Generators.Model;

namespace AlexNetCompiler.Generators.Lowering;

/// <summary>
/// Turns the inferred layers into each backend's <see cref="ExecutionPlan"/>. Every decision about fusion, in-place
/// work and buffers is made here, from the backend's <see cref="Backend"/> rules; the emitters print the plan.
/// </summary>
internal static class Lowerer
{
    public const string InputBuffer = CudaContract.InputBuffer;

    public static ExecutionPlan Lower(NetworkModel model, Backend backend) => Lower(model.Input, model.ClassCount, model.ParameterCount, model.Layers.Items, backend);

    public static ExecutionPlan Lower(TensorShape input, int classCount, long parameterCount, IReadOnlyList<LayerModel> layers, Backend backend)
    {
        var stages = new List<PlanStage>();
        string current = InputBuffer;
        TensorShape currentShape = input;
        LayerModel? pendingDropout = null; // a dropout waiting to be fused into the Dense after it

        void Add(PlanStage stage)
        {
            stages.Add(stage);
            current = stage.Output;
            currentShape = stage.OutputShape;
        }

        void FlushDropout()
        {
            if (pendingDropout is null) return;
            Add(Standalone(StageKind.Dropout, pendingDropout, backend, current, currentShape, dropout: pendingDropout));
            pendingDropout = null;
        }

        for (int i = 0; i < layers.Count; i++)
        {
            LayerModel layer = layers[i];
            LayerModel? next = i + 1 < layers.Count ? layers[i + 1] : null;
            switch (layer.Kind)
            {
                case LayerKind.Conv2d:
                case LayerKind.Dense:
                {
                    // Only a Dense takes its dropout inside the GEMM; a conv gets it as a stage of its own first.
                    LayerModel? dropout = null;
                    if (layer.Kind == LayerKind.Dense) (dropout, pendingDropout) = (pendingDropout, null);
                    else FlushDropout();
                    LayerModel? relu = next is { Kind: LayerKind.Relu } ? next : null;
                    if (relu is not null) i++;
                    string name = StageName(backend, layer.Identifier);
                    Add(new PlanStage(layer.Kind == LayerKind.Conv2d ? StageKind.Conv : StageKind.Dense, name, layer, relu, null, null, dropout,
                        current, OutputName(backend, name), true, null, null, currentShape, layer.Output, 2 * MultiplyAdds(layer),
                        UpdatesWeightInBackward: layer.Kind == LayerKind.Dense && backend.UpdatesDenseWeightsInBackward,
                        WeightCache: layer.Kind == LayerKind.Conv2d && backend.CachesPreparedConvWeights
                            ? SavedName(backend, name, "WeightCache", "weight_cache")
                            : null));
                    break;
                }
                case LayerKind.Dropout:
                    FlushDropout();
                    if (backend.FusesDropoutIntoDense && next is { Kind: LayerKind.Dense } && layer.DropoutP < 1f) pendingDropout = layer;
                    else Add(Standalone(StageKind.Dropout, layer, backend, current, currentShape, dropout: layer));
                    break;
                case LayerKind.Lrn:
                {
                    FlushDropout();
                    LayerModel? pool = backend.FusesLrnIntoPool && next is { Kind: LayerKind.MaxPool } ? next : null;
                    if (pool is not null) i++;
                    string name = pool is null ? StageName(backend, layer.Identifier) : StageName(backend, layer.Identifier) + "_" + StageName(backend, pool.Identifier);
                    Add(new PlanStage(StageKind.LrnPool, name, layer, null, layer, pool, null, current, OutputName(backend, name), true,
                        backend.KeepsLrnScale ? SavedName(backend, name, "Scale", "scale") : null,
                        pool is null ? null : SavedName(backend, name, "Argmax", "argmax"),
                        currentShape, pool?.Output ?? layer.Output, 0));
                    break;
                }
                case LayerKind.MaxPool:
                {
                    FlushDropout();
                    string name = StageName(backend, layer.Identifier);
                    Add(new PlanStage(StageKind.LrnPool, name, layer, null, null, layer, null, current, OutputName(backend, name), true, null,
                        SavedName(backend, name, "Argmax", "argmax"), currentShape, layer.Output, 0));
                    break;
                }
                case LayerKind.AdaptiveAvgPool:
                {
                    // Where the input already has the output size every bin is one element: the identity, so no stage.
                    if (layer.Input == layer.Output) break;
                    FlushDropout();
                    string name = StageName(backend, layer.Identifier);
                    Add(new PlanStage(StageKind.AvgPool, name, layer, null, null, null, null, current, OutputName(backend, name), true, null, null,
                        currentShape, layer.Output, 0));
                    break;
                }
                case LayerKind.Relu:
                {
                    FlushDropout();
                    // LRN's backward reads LRN's output, so a ReLU after it must not overwrite it.
                    bool inPlace = backend.ReluRunsInPlace && stages.Count > 0 && stages[stages.Count - 1].Lrn is null;
                    string name = StageName(backend, layer.Identifier);
                    Add(new PlanStage(StageKind.Relu, name, layer, null, null, null, null, current, inPlace ? current : OutputName(backend, name), !inPlace,
                        null, null, currentShape, layer.Output, 0));
                    break;
                }
                case LayerKind.SoftmaxCrossEntropy:
                    break; // the loss head follows the last stage in every backend
                default:
                    throw new InvalidOperationException($"Lowering: layer '{layer.Name}' has unsupported kind {layer.Kind}.");
            }
        }
        FlushDropout();
        if (stages.Count == 0) throw new InvalidOperationException("Lowering: the network has no layers to run.");
        return new ExecutionPlan(backend, stages.ToEquatableArray(), PlanBuffers(backend, input, classCount, parameterCount, layers, stages),
            stages[stages.Count - 1].Output, GradientName(backend, 'A'), GradientName(backend, 'B'));
    }

    private static PlanStage Standalone(StageKind kind, LayerModel layer, Backend backend, string input, TensorShape shape, LayerModel? dropout)
    {
        string name = StageName(backend, layer.Identifier);
        return new PlanStage(kind, name, layer, null, null, null, dropout, input, OutputName(backend, name), true, null, null, shape, shape, 0);
    }

    private static long MultiplyAdds(LayerModel layer) => layer.Kind == LayerKind.Conv2d
        ? (long)layer.Output.Length * (layer.Input.Channels / layer.Groups) * layer.KernelHeight * layer.KernelWidth
        : (long)layer.Output.Length * layer.Input.Length;

    /// <summary>
    /// Every buffer of a training pass. The gradient ping-pong buffers hold the largest activation: on the CPU over
    /// every layer's output and the input, on CUDA over the stages' outputs (its first backward never writes an input gradient).
    /// </summary>
    private static EquatableArray<PlanBuffer> PlanBuffers(Backend backend, TensorShape input, int classCount, long parameterCount,
        IReadOnlyList<LayerModel> layers, List<PlanStage> stages)
    {
        bool cpu = !backend.OnDevice;
        var buffers = new List<PlanBuffer> { new(InputBuffer, input.Length, 0, false, BufferRole.Input) };
        if (!cpu)
        {
            buffers.Add(new PlanBuffer(CudaContract.LabelsBuffer, 1, 0, true, BufferRole.Loss));
            buffers.Add(new PlanBuffer(CudaContract.LossesBuffer, 1, 0, false, BufferRole.Loss));
        }
        long gradientLength = 0;
        foreach (PlanStage s in stages)
        {
            gradientLength = Math.Max(gradientLength, s.OutputShape.Length);
            if (!s.OwnsOutput) continue;
            buffers.Add(new PlanBuffer(s.Output, s.OutputShape.Length, 0, false, BufferRole.Activation));
            if (s.Scale is not null) buffers.Add(new PlanBuffer(s.Scale, s.OutputShape.Length, 0, false, BufferRole.Saved));
            if (s.Argmax is not null) buffers.Add(new PlanBuffer(s.Argmax, s.OutputShape.Length, 0, true, BufferRole.Saved));
        }
        if (cpu)
        {
            gradientLength = input.Length;
            foreach (LayerModel l in layers) gradientLength = Math.Max(gradientLength, l.Output.Length);
            buffers.Add(new PlanBuffer("probabilities", classCount, 0, false, BufferRole.Loss));
        }
        buffers.Add(new PlanBuffer(GradientName(backend, 'A'), gradientLength, 0, false, BufferRole.Gradient));
        buffers.Add(new PlanBuffer(GradientName(backend, 'B'), gradientLength, 0, false, BufferRole.Gradient));
        buffers.Add(new PlanBuffer(cpu ? "Parameters" : CudaContract.ParametersBuffer, 0, parameterCount, false, BufferRole.State));
        buffers.Add(new PlanBuffer(cpu ? "Gradients" : CudaContract.GradientsBuffer, 0, parameterCount, false, BufferRole.State));
        // The CPU's velocity belongs to its optimizer (AlexNetCompiler.Training.Sgd), not to the network.
        if (!cpu) buffers.Add(new PlanBuffer(CudaContract.VelocityBuffer, 0, parameterCount, false, BufferRole.State));
        return buffers.ToEquatableArray();
    }

    /// <summary>
    /// The memory plan of the CPU backend, which allocates exactly its plan's buffers: per sample, every activation and
    /// saved tensor of a training pass, the probabilities and the two gradient buffers; inference needs two ping-pong
    /// buffers of the largest activation; the largest conv's im2col columns are per-thread scratch.
    /// </summary>
    public static MemoryPlanModel PlanMemory(ExecutionPlan cpuPlan, IReadOnlyList<LayerModel> layers, long parameterCount)
    {
        long kept = 0, gradient = 0;
        foreach (PlanBuffer b in cpuPlan.Buffers)
        {
            if (b.Role is BufferRole.Activation or BufferRole.Saved or BufferRole.Loss) kept += b.PerSample;
            if (b.Role == BufferRole.Gradient) gradient = b.PerSample;
        }
        long workspace = 0;
        foreach (LayerModel layer in layers)
        {
            if (layer.Kind != LayerKind.Conv2d) continue;
            workspace = Math.Max(workspace, (long)(layer.Input.Channels / layer.Groups) * layer.KernelHeight * layer.KernelWidth * layer.Output.Height * layer.Output.Width);
        }
        long parameterBytes = 4 * parameterCount;
        return new MemoryPlanModel(
            ParameterBytes: parameterBytes,
            TrainingStateBytes: 2 * parameterBytes,
            InferenceActivationBytesPerSample: 4 * 2 * gradient,
            TrainingActivationBytesPerSample: 4 * kept + 4 * 2 * gradient,
            ConvWorkspaceBytesPerThread: 4 * workspace,
            LargestActivationLength: (int)gradient);
    }

    // ---- names ----

    /// <summary>"conv1" for the identifier "Conv1" in both namings (a CUDA name is also a C identifier: lower case, '_' for the rest).</summary>
    internal static string StageName(Backend backend, string identifier)
    {
        if (backend.Naming == BufferNaming.CamelCase) return CamelCase(identifier);
        var sb = new StringBuilder();
        foreach (char c in identifier)
        {
            if (c >= 'A' && c <= 'Z') sb.Append((char)(c - 'A' + 'a'));
            else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) sb.Append(c);
            else sb.Append('_');
        }
        if (sb.Length == 0 || char.IsDigit(sb[0])) sb.Insert(0, "layer_");
        return sb.ToString();
    }

    /// <summary>"Conv1" -> "conv1": a C# local's name from a layer's identifier.</summary>
    internal static string CamelCase(string identifier) =>
        identifier.Length == 0 ? identifier : char.ToLowerInvariant(identifier[0]) + identifier.Substring(1);

    private static string OutputName(Backend backend, string stage) => backend.Naming == BufferNaming.CamelCase ? stage + "Output" : stage + "_out";

    private static string SavedName(Backend backend, string stage, string camel, string snake) =>
        backend.Naming == BufferNaming.CamelCase ? stage + camel : stage + "_" + snake;

    private static string GradientName(Backend backend, char which) =>
        backend.Naming == BufferNaming.CamelCase ? "gradient" + which : "grad_" + char.ToLowerInvariant(which);
}
