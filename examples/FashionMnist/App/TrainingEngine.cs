using AlexNetCompiler;
using AlexNetCompiler.Cuda;
using AlexNetCompiler.Training;

namespace FashionMnist.App;

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
    /// the loss is finite, the SGD update at <paramref name="learningRate"/>. Returns the mean loss; afterwards
    /// <see cref="Logits"/> holds this batch's logits.
    /// </summary>
    float TrainStep(ReadOnlySpan<float> images, ReadOnlySpan<int> labels, int count, ulong dropoutSeed, float learningRate);

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

    public float TrainStep(ReadOnlySpan<float> images, ReadOnlySpan<int> labels, int count, ulong dropoutSeed, float learningRate)
    {
        float loss = network.ForwardBackward(images, labels, count, dropoutSeed);
        if (!float.IsFinite(loss)) return loss; // the caller stops; an update would only spread the NaN
        optimizer.LearningRate = learningRate;
        optimizer.Step(network.Parameters, network.Gradients);
        return loss;
    }

    public ReadOnlySpan<float> Logits => network.Logits;

    public void Forward(ReadOnlySpan<float> images, int count, Span<float> logits) => network.Forward(images, count, logits);

    public void CopyStateToHost() { }

    public void CopyStateFromHost() { }

    public void Dispose() { }
}

/// <summary>
/// The generated CUDA kernels through <see cref="CudaNetworkRunner"/>: parameters, gradients and momentum stay on
/// the GPU between steps; only the batch goes up and the per-sample losses and logits come back.
/// </summary>
public sealed class CudaTrainingEngine : ITrainingEngine
{
    private readonly CudaNetworkRunner _runner;
    private readonly INetwork _host;
    private readonly Sgd _optimizer;
    private readonly float[] _logits;
    private int _lastCount;

    /// <param name="runner">Owned: disposed with the engine.</param>
    /// <param name="host">The host network whose parameters are the checkpointed copy.</param>
    /// <param name="optimizer">Its hyper-parameters drive the GPU update; its velocity is the checkpointed momentum.</param>
    public CudaTrainingEngine(CudaNetworkRunner runner, INetwork host, Sgd optimizer)
    {
        if (runner.Plan.ParameterCount != host.Parameters.Length)
            throw new ArgumentException($"{runner.Plan.NetworkName}: the CUDA plan has {runner.Plan.ParameterCount} parameters, the host network {host.Parameters.Length}.");
        _runner = runner;
        _host = host;
        _optimizer = optimizer;
        _logits = new float[runner.MaxBatch * runner.Plan.ClassCount];
    }

    public string Description =>
        $"cuda: {_runner.Device.Name} ({_runner.Architecture}), {(_runner.Options.Tf32 ? "TF32 tensor cores" : "FP32")}, " +
        $"kernels {(_runner.CacheHit ? "from the cache" : $"compiled in {_runner.CompileTime.TotalSeconds:F1} s")}, " +
        $"GEMM tiles {(_runner.GemmTunings.Count > 0 ? "tuned" : "fixed")}: " +
        string.Join(", ", _runner.GemmTileChoices.GroupBy(c => c.Value).Select(g => $"{g.Key} for {g.Count()} kernel{(g.Count() == 1 ? "" : "s")}"));

    public float TrainStep(ReadOnlySpan<float> images, ReadOnlySpan<int> labels, int count, ulong dropoutSeed, float learningRate)
    {
        SgdOptions o = _optimizer.Options;
        _optimizer.LearningRate = learningRate;
        float loss = _runner.ForwardBackward(images, labels, count, dropoutSeed);
        _runner.DownloadLogits(_logits, count);
        _lastCount = count;
        if (!float.IsFinite(loss)) return loss;
        _runner.EnqueueSgd(learningRate, o.Momentum, o.WeightDecay, o.Variant == SgdVariant.Paper);
        return loss;
    }

    public ReadOnlySpan<float> Logits => _logits.AsSpan(0, _lastCount * _runner.Plan.ClassCount);

    public void Forward(ReadOnlySpan<float> images, int count, Span<float> logits) => _runner.Forward(images, count, logits);

    public void CopyStateToHost()
    {
        _runner.DownloadParameters(_host.Parameters);
        _runner.DownloadVelocity(_optimizer.Velocity);
        _optimizer.StepCount = _runner.SgdSteps;
    }

    public void CopyStateFromHost()
    {
        _runner.UploadParameters(_host.Parameters);
        _runner.UploadVelocity(_optimizer.Velocity);
        _runner.SgdSteps = _optimizer.StepCount;
    }

    public void Dispose() => _runner.Dispose();
}
