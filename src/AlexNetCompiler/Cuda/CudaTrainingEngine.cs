using AlexNetCompiler.Training;

namespace AlexNetCompiler.Cuda;

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

    public float TrainStep(ReadOnlySpan<float> images, ReadOnlySpan<int> labels, int count, ulong dropoutSeed)
    {
        SgdOptions o = _optimizer.Options;
        float loss = _runner.ForwardBackward(images, labels, count, dropoutSeed);
        _runner.DownloadLogits(_logits, count);
        _lastCount = count;
        if (!float.IsFinite(loss)) return loss;
        _runner.EnqueueSgd(_optimizer.LearningRate, o.Momentum, o.WeightDecay, o.Variant == SgdVariant.Paper);
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
