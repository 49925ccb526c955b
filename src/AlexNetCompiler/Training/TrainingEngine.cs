namespace AlexNetCompiler.Training;

/// <summary>
/// Where a training step and inference run. The host copies of the parameters (<see cref="INetwork.Parameters"/>)
/// and of the momentum (<see cref="Sgd.Velocity"/>, <see cref="Sgd.StepCount"/>) are what checkpoints save and
/// plots read; an engine that keeps its own copies elsewhere brings them back in <see cref="CopyStateToHost"/>
/// and takes them over in <see cref="CopyStateFromHost"/>.
/// </summary>
public interface ITrainingEngine : IDisposable
{
    /// <summary>One line for the user: which device and how it is driven.</summary>
    string Description { get; }

    /// <summary>
    /// Forward with dropout (mask from <paramref name="dropoutSeed"/>), softmax cross-entropy, backward and, when
    /// the loss is finite, the SGD update with the optimizer's current settings (its learning rate is the one
    /// copy of the schedule's value). Returns the mean loss; afterwards <see cref="Logits"/> holds this batch's logits.
    /// </summary>
    float TrainStep(ReadOnlySpan<float> images, ReadOnlySpan<int> labels, int count, ulong dropoutSeed);

    /// <summary>Logits [count, classes] of the last <see cref="TrainStep"/>.</summary>
    ReadOnlySpan<float> Logits { get; }

    /// <summary>Inference (dropout off): images [count, C, H, W] to logits [count, classes].</summary>
    void Forward(ReadOnlySpan<float> images, int count, Span<float> logits);

    /// <summary>Makes the host parameters and momentum current (before a checkpoint, an evaluation on the host or a plot).</summary>
    void CopyStateToHost();

    /// <summary>Takes the host parameters and momentum as the engine's state (after initialisation or a resume).</summary>
    void CopyStateFromHost();
}

/// <summary>The generated CPU code: the network's own buffers are the state, so copies are no-ops.</summary>
public sealed class CpuTrainingEngine(INetwork network, Sgd optimizer) : ITrainingEngine
{
    public string Description => "cpu";

    // The network's own step: a generated one updates its dense weights inside the backward pass. It takes no step
    // when the loss is not finite (the caller stops; an update would only spread the NaN).
    public float TrainStep(ReadOnlySpan<float> images, ReadOnlySpan<int> labels, int count, ulong dropoutSeed) =>
        network.TrainStep(images, labels, count, optimizer, dropoutSeed);

    public ReadOnlySpan<float> Logits => network.Logits;

    public void Forward(ReadOnlySpan<float> images, int count, Span<float> logits) => network.Forward(images, count, logits);

    public void CopyStateToHost() { }

    public void CopyStateFromHost() { }

    public void Dispose() { }
}
