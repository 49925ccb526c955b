using AlexNetCompiler.Training;

namespace AlexNetCompiler.Cuda;

/// <summary>
/// A trainer's engine over a <see cref="CudaNetwork"/>: parameters, gradients and momentum stay on the GPU between
/// steps; only the batch goes up and the per-sample losses and logits come back. The host network and its
/// <see cref="Sgd"/> are the checkpointed state, copied on request.
/// </summary>
/// <param name="network">Owned: disposed with the engine.</param>
/// <param name="host">The host network whose parameters are the checkpointed copy.</param>
/// <param name="optimizer">Its settings drive the GPU update; its velocity is the checkpointed momentum.</param>
public sealed class CudaTrainingEngine(CudaNetwork network, INetwork host, Sgd optimizer) : ITrainingEngine
{
    public string Description => network.Description;

    public float TrainStep(ReadOnlySpan<float> images, ReadOnlySpan<int> labels, int count, ulong dropoutSeed)
    {
        float loss = network.ForwardBackward(images, labels, count, dropoutSeed);
        if (!float.IsFinite(loss)) return loss; // the caller stops; an update would only spread the NaN
        network.Update(optimizer);
        return loss;
    }

    public ReadOnlySpan<float> Logits => network.Logits;

    public void Forward(ReadOnlySpan<float> images, int count, Span<float> logits) => network.Forward(images, count, logits);

    public void CopyStateToHost()
    {
        network.CopyParametersTo(host.Parameters);
        network.CopyOptimizerStateToHost();
    }

    public void CopyStateFromHost()
    {
        network.CopyParametersFrom(host.Parameters);
        network.BindOptimizer(optimizer);
    }

    public void Dispose() => network.Dispose();
}
