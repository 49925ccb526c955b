namespace AlexNetCompiler;

/// <summary>
/// What every generated network class implements, and <see cref="Cuda.CudaNetwork"/>, the same network on a GPU,
/// so that trainers, checkpoints and benchmarks can work with any network on either device. Inputs are NCHW float32,
/// batch-major; logits are [batch, classes].
/// </summary>
public interface INetwork
{
    NetworkDescriptor Descriptor { get; }

    /// <summary>The largest batch the buffers were planned for.</summary>
    int MaxBatch { get; }

    /// <summary>
    /// Flat parameter buffer; each tensor's slice is given by its ParameterDescriptor. On a GPU, a host mirror that
    /// the next pass uploads (see <see cref="Cuda.CudaNetwork.Parameters"/>).
    /// </summary>
    float[] Parameters { get; }

    /// <summary>
    /// Gradients of the last ForwardBackward, same layout as Parameters. After a generated CPU network's
    /// <see cref="TrainStep"/>, the dense weights' slices may not be current (see there).
    /// </summary>
    float[] Gradients { get; }

    /// <summary>Logits of the last Forward or ForwardBackward, [batch, classes].</summary>
    ReadOnlySpan<float> Logits { get; }

    /// <summary>Inference pass (dropout off). logits: [batch, classes].</summary>
    void Forward(ReadOnlySpan<float> input, int batch, Span<float> logits);

    /// <summary>
    /// Training pass: forward (dropout on when dropoutSeed has a value, off when null), softmax
    /// cross-entropy against labels, analytic backward into Gradients. Returns the mean loss.
    /// </summary>
    float ForwardBackward(ReadOnlySpan<float> input, ReadOnlySpan<int> labels, int batch, ulong? dropoutSeed);

    /// <summary>
    /// <see cref="ForwardBackward(ReadOnlySpan{float}, ReadOnlySpan{int}, int, ulong?)"/> over a shard of a larger batch
    /// that starts at sample <paramref name="dropoutFirstSample"/> of it: the dropout masks are those the larger batch
    /// draws for these samples, so data-parallel shards together compute what one process computes over the whole batch.
    /// Generated CPU networks and <c>CudaNetwork</c> implement it; elsewhere only a shard at sample 0 (or no dropout) is supported.
    /// </summary>
    float ForwardBackward(ReadOnlySpan<float> input, ReadOnlySpan<int> labels, int batch, ulong? dropoutSeed, long dropoutFirstSample) =>
        dropoutFirstSample == 0 || dropoutSeed is null
            ? ForwardBackward(input, labels, batch, dropoutSeed)
            : throw new NotSupportedException($"{Descriptor.Name} on this device cannot draw the dropout masks of a batch shard (first sample {dropoutFirstSample}); data-parallel training with dropout needs a generated network on the CPU or its CudaNetwork.");

    /// <summary>
    /// <see cref="ForwardBackward(ReadOnlySpan{float}, ReadOnlySpan{int}, int, ulong?, long)"/> that also reports, through
    /// <paramref name="gradientsReady"/>, each part of <see cref="Gradients"/> as soon as the backward pass has finished
    /// it, so that a data-parallel engine can start summing the last layers' gradients while the first layers' are still
    /// being computed. Generated CPU networks call it once per layer with parameters, from the last layer to the first,
    /// on the calling thread, between two layers' kernels; the ranges cover the buffer exactly once. Elsewhere it is
    /// called once, for the whole buffer, after the pass.
    /// </summary>
    float ForwardBackward(ReadOnlySpan<float> input, ReadOnlySpan<int> labels, int batch, ulong? dropoutSeed, long dropoutFirstSample, GradientsReady? gradientsReady)
    {
        float loss = ForwardBackward(input, labels, batch, dropoutSeed, dropoutFirstSample);
        gradientsReady?.Invoke(0, Gradients.Length);
        return loss;
    }

    /// <summary>
    /// One SGD step: <see cref="ForwardBackward(ReadOnlySpan{float}, ReadOnlySpan{int}, int, ulong?)"/>, then, when the
    /// loss is finite, the optimizer's update of Parameters (a non-finite loss would only spread). Returns the mean loss.
    /// Generated CPU networks update the dense weights inside the backward pass instead, and at a small batch do not store
    /// their gradients.
    /// </summary>
    float TrainStep(ReadOnlySpan<float> input, ReadOnlySpan<int> labels, int batch, Training.Sgd optimizer, ulong? dropoutSeed)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        float loss = ForwardBackward(input, labels, batch, dropoutSeed);
        if (float.IsFinite(loss)) optimizer.Step(Parameters, Gradients);
        return loss;
    }
}

/// <summary>
/// <see cref="INetwork.Gradients"/>[<paramref name="offset"/>, <paramref name="offset"/> + <paramref name="length"/>) holds
/// its final values for this pass; the backward pass will not touch it again.
/// </summary>
public delegate void GradientsReady(int offset, int length);
