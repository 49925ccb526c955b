using AlexNetCompiler.Training;

namespace AlexNetCompiler.Cuda;

/// <summary>
/// A generated network on a GPU, behind the same <see cref="INetwork"/> as its generated CPU class: built from the
/// class's <c>Model</c>, <c>CudaPlan</c> and <c>CudaSource</c>, it runs the plan through a
/// <see cref="CudaNetworkRunner"/> it owns. Parameters, gradients and momentum live on the device; the host arrays
/// are mirrors kept by one rule:
/// <list type="bullet">
/// <item><see cref="Parameters"/>: reading the property hands out the host array and counts as a possible write, so
/// the next pass or update uploads it first; a device-side update (<see cref="TrainStep"/>, <see cref="Update"/>)
/// makes the host array stale, and the next read of the property downloads first. No pass runs on parameters older
/// than the host array last handed out. An array reference kept across a pass is not watched: read the property
/// again to see or change the device's values.</item>
/// <item><see cref="Gradients"/>: downloaded on the first read after a <see cref="ForwardBackward"/>; writing to the
/// host copy does not reach the device (every backward pass overwrites the device's gradients anyway).</item>
/// <item><see cref="Logits"/>: downloaded after every pass.</item>
/// <item>Momentum: the <see cref="Sgd"/> a device update last used is bound to the network, and while bound its
/// velocity lives on the device alone (<see cref="Sgd.Velocity"/> is not current). <see cref="CopyOptimizerStateToHost"/>
/// brings it back; <see cref="BindOptimizer"/> uploads an optimizer's velocity (done on the first update with an
/// optimizer that is not bound). The learning rate and <see cref="Sgd.StepCount"/> stay in the <see cref="Sgd"/>:
/// each update reads them and counts its step there, as a CPU step does.</item>
/// </list>
/// Like a CPU network, one thread at a time.
/// </summary>
public sealed class CudaNetwork : INetwork, IDisposable
{
    private readonly CudaNetworkRunner _runner;
    private readonly CudaDevice? _ownedDevice;
    private readonly float[] _parameters;
    private readonly float[] _gradients;
    private readonly float[] _logits;
    private ParameterMirror _parameterMirror = ParameterMirror.HostMayBeNewer; // the fresh device buffer holds nothing yet
    private bool _gradientsStale;
    private int _lastBatch;
    private Sgd? _boundOptimizer;

    /// <summary>Which side holds the current parameters.</summary>
    private enum ParameterMirror
    {
        InSync,
        /// <summary>The host array was handed out since the last upload: upload before the device reads the parameters.</summary>
        HostMayBeNewer,
        /// <summary>The device updated the parameters since the last download: download before the host array is handed out.</summary>
        DeviceNewer,
    }

    /// <summary>
    /// Compiles the network's kernels for <paramref name="device"/> and allocates its buffers for
    /// <paramref name="maxBatch"/>. The parameters start at zero, as the host array does; fill
    /// <see cref="Parameters"/> (e.g. with <see cref="Initializer"/>) before training.
    /// </summary>
    /// <param name="descriptor">The generated class's <c>Model</c>.</param>
    /// <param name="plan">The generated class's <c>CudaPlan</c>.</param>
    /// <param name="cudaSource">The generated class's <c>CudaSource</c>.</param>
    /// <param name="device">Not owned: the caller disposes it after the network.</param>
    public CudaNetwork(NetworkDescriptor descriptor, CudaLaunchPlan plan, string cudaSource, int maxBatch, CudaDevice device, CudaRunnerOptions? options = null)
        : this(descriptor, plan, cudaSource, maxBatch, device, options, ownedDevice: null)
    {
    }

    private CudaNetwork(NetworkDescriptor descriptor, CudaLaunchPlan plan, string cudaSource, int maxBatch, CudaDevice device, CudaRunnerOptions? options, CudaDevice? ownedDevice)
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        ArgumentNullException.ThrowIfNull(plan);
        if (plan.ParameterCount != descriptor.ParameterCount || plan.ClassCount != descriptor.ClassCount || plan.InputLength != descriptor.InputLength)
            throw new ArgumentException(
                $"The CUDA plan {plan.NetworkName} ({plan.ParameterCount} parameters, {plan.ClassCount} classes, {plan.InputLength} inputs per sample) " +
                $"is not the plan of {descriptor.Name} ({descriptor.ParameterCount}, {descriptor.ClassCount}, {descriptor.InputLength}).", nameof(plan));
        _runner = new CudaNetworkRunner(device, plan, cudaSource, maxBatch, options);
        _ownedDevice = ownedDevice;
        Descriptor = descriptor;
        _parameters = new float[plan.ParameterCount];
        _gradients = new float[plan.ParameterCount];
        _logits = new float[maxBatch * plan.ClassCount];
    }

    /// <summary>
    /// Opens GPU <paramref name="deviceOrdinal"/> and builds the network on it (the network owns the device), or throws
    /// <see cref="CudaUnavailableException"/> saying in one sentence why CUDA cannot run it here: no driver, no GPU,
    /// no NVRTC, or kernels that do not compile or load. Arguments that do not fit the plan still throw
    /// <see cref="ArgumentException"/>.
    /// </summary>
    /// <example><code>
    /// using CudaNetwork gpu = CudaNetwork.Create(FashionNet.Model, FashionNet.CudaPlan, FashionNet.CudaSource, maxBatch: 128);
    /// </code></example>
    public static CudaNetwork Create(NetworkDescriptor descriptor, CudaLaunchPlan plan, string cudaSource, int maxBatch, CudaRunnerOptions? options = null, int deviceOrdinal = 0)
    {
        if (!CudaDevice.TryOpen(deviceOrdinal, out CudaDevice? device, out string? reason))
            throw new CudaUnavailableException(reason!.TrimEnd('.') + ".");
        try
        {
            return new CudaNetwork(descriptor, plan, cudaSource, maxBatch, device!, options, ownedDevice: device);
        }
        catch (Exception e) when (e is CudaException or CudaUnavailableException or IOException)
        {
            string name = device!.Name;
            device.Dispose();
            throw new CudaUnavailableException($"{name}: the kernels could not be compiled or loaded: {e.Message.TrimEnd('.')}.", e);
        }
        catch
        {
            device!.Dispose();
            throw;
        }
    }

    public NetworkDescriptor Descriptor { get; }

    public int MaxBatch => _runner.MaxBatch;

    public CudaDevice Device => _runner.Device;

    /// <summary>One line for the user: the device, the precision, how the kernels were obtained and the GEMM tiles they run with.</summary>
    public string Description =>
        $"cuda: {_runner.Device.Name} ({_runner.Architecture}), {(_runner.Options.Tf32 ? "TF32 tensor cores" : "FP32")}, " +
        $"kernels {(_runner.CacheHit ? "from the cache" : $"compiled in {_runner.CompileTime.TotalSeconds:F1} s")}, " +
        $"GEMM tiles {(_runner.GemmTunings.Count > 0 ? "tuned" : "fixed")}: " +
        string.Join(", ", _runner.GemmTileChoices.GroupBy(c => c.Value).Select(g => $"{g.Key} for {g.Count()} kernel{(g.Count() == 1 ? "" : "s")}"));

    /// <summary>
    /// The host mirror of the device's parameters, current when returned. Reading it counts as a write: the next pass
    /// or update uploads the array first (see the class summary).
    /// </summary>
    public float[] Parameters
    {
        get
        {
            DownloadParametersIfDeviceNewer();
            _parameterMirror = ParameterMirror.HostMayBeNewer;
            return _parameters;
        }
    }

    /// <summary>The device's gradients of the last <see cref="ForwardBackward"/>, downloaded on the first read after it.</summary>
    public float[] Gradients
    {
        get
        {
            if (_gradientsStale)
            {
                _runner.DownloadGradients(_gradients);
                _gradientsStale = false;
            }
            return _gradients;
        }
    }

    /// <summary>Logits of the last pass, [batch, classes], downloaded when it ran.</summary>
    public ReadOnlySpan<float> Logits => _logits.AsSpan(0, _lastBatch * Descriptor.ClassCount);

    public void Forward(ReadOnlySpan<float> input, int batch, Span<float> logits)
    {
        int length = batch * Descriptor.ClassCount;
        if (batch > 0 && logits.Length < length)
            throw new ArgumentException($"{Descriptor.Name}.Forward: logits holds {logits.Length} floats; batch {batch} needs {length}.", nameof(logits));
        UploadParametersIfHostMayBeNewer();
        _runner.Forward(input, batch, _logits);
        _lastBatch = batch;
        _logits.AsSpan(0, length).CopyTo(logits);
    }

    public float ForwardBackward(ReadOnlySpan<float> input, ReadOnlySpan<int> labels, int batch, ulong? dropoutSeed) =>
        ForwardBackward(input, labels, batch, dropoutSeed, dropoutFirstSample: 0);

    /// <summary>
    /// <see cref="ForwardBackward(ReadOnlySpan{float}, ReadOnlySpan{int}, int, ulong?)"/> over a shard of a larger batch
    /// starting at sample <paramref name="dropoutFirstSample"/>: every kernel that draws a dropout mask starts it at the
    /// shard's first element (first sample x the layer's per-sample length), so the shard draws exactly the masks the
    /// whole batch draws for its samples, as the generated CPU network does.
    /// </summary>
    public float ForwardBackward(ReadOnlySpan<float> input, ReadOnlySpan<int> labels, int batch, ulong? dropoutSeed, long dropoutFirstSample)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(dropoutFirstSample);
        UploadParametersIfHostMayBeNewer();
        float loss = _runner.ForwardBackward(input, labels, batch, dropoutSeed, dropoutFirstSample);
        _runner.DownloadLogits(_logits, batch);
        _lastBatch = batch;
        _gradientsStale = true;
        return loss;
    }

    /// <summary>
    /// <see cref="ForwardBackward"/>, then, as the CPU network's TrainStep does, the optimizer's update on the device
    /// (<see cref="Update"/>) when the loss is finite. Returns the mean loss.
    /// </summary>
    public float TrainStep(ReadOnlySpan<float> input, ReadOnlySpan<int> labels, int batch, Sgd optimizer, ulong? dropoutSeed)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        float loss = ForwardBackward(input, labels, batch, dropoutSeed);
        if (float.IsFinite(loss)) Update(optimizer);
        return loss;
    }

    /// <summary>
    /// The optimizer's update of the parameters from the gradients of the last <see cref="ForwardBackward"/>, on the
    /// device, with its learning rate, momentum, weight decay and variant; counts the step in
    /// <see cref="Sgd.StepCount"/>. Binds the optimizer first when it is not the bound one.
    /// </summary>
    public void Update(Sgd optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        if (!ReferenceEquals(optimizer, _boundOptimizer)) BindOptimizer(optimizer);
        UploadParametersIfHostMayBeNewer();
        // The optimizer's step count decides whether this is the first PyTorch step (velocity = gradient), as on the CPU.
        _runner.SgdSteps = optimizer.StepCount;
        SgdOptions options = optimizer.Options;
        _runner.EnqueueSgd(optimizer.LearningRate, options.Momentum, options.WeightDecay, options.Variant == SgdVariant.Paper);
        optimizer.StepCount++;
        _parameterMirror = ParameterMirror.DeviceNewer;
    }

    /// <summary>
    /// Makes <paramref name="optimizer"/> the one whose momentum lives on the device, uploading its
    /// <see cref="Sgd.Velocity"/>; the optimizer bound until then gets its momentum back first. Call it again after
    /// changing the velocity on the host (a resumed checkpoint).
    /// </summary>
    public void BindOptimizer(Sgd optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        if (optimizer.Velocity.Length != _parameters.Length)
            throw new ArgumentException($"{Descriptor.Name}: the optimizer's velocity holds {optimizer.Velocity.Length} floats; the network has {_parameters.Length} parameters.", nameof(optimizer));
        // The momentum of the optimizer bound until now lives on the device alone: hand it back before it is replaced.
        if (_boundOptimizer is not null && !ReferenceEquals(_boundOptimizer, optimizer)) _runner.DownloadVelocity(_boundOptimizer.Velocity);
        _runner.UploadVelocity(optimizer.Velocity);
        _boundOptimizer = optimizer;
    }

    /// <summary>Downloads the device's momentum into the bound optimizer's <see cref="Sgd.Velocity"/> (nothing when none is bound).</summary>
    public void CopyOptimizerStateToHost()
    {
        if (_boundOptimizer is not null) _runner.DownloadVelocity(_boundOptimizer.Velocity);
    }

    /// <summary>Copies the current parameters to <paramref name="destination"/> without handing out the mirror, so the next pass uploads nothing.</summary>
    public void CopyParametersTo(Span<float> destination)
    {
        if (destination.Length != _parameters.Length)
            throw new ArgumentException($"{Descriptor.Name}: expected {_parameters.Length} floats for the parameters, got {destination.Length}.", nameof(destination));
        DownloadParametersIfDeviceNewer();
        _parameters.CopyTo(destination);
    }

    /// <summary>Takes <paramref name="source"/> as the parameters, on the host and the device at once.</summary>
    public void CopyParametersFrom(ReadOnlySpan<float> source)
    {
        if (source.Length != _parameters.Length)
            throw new ArgumentException($"{Descriptor.Name}: expected {_parameters.Length} floats for the parameters, got {source.Length}.", nameof(source));
        source.CopyTo(_parameters);
        _runner.UploadParameters(_parameters);
        _parameterMirror = ParameterMirror.InSync;
    }

    /// <summary>The runner, for data-parallel training's collectives on the device buffers.</summary>
    internal CudaNetworkRunner Runner => _runner;

    /// <summary>Makes the device hold the current parameters (uploads the host array when it was handed out since).</summary>
    internal void SynchroniseParametersToDevice() => UploadParametersIfHostMayBeNewer();

    /// <summary>Something other than a pass or an update wrote the device's parameters (a broadcast): the host copy is stale.</summary>
    internal void ParametersChangedOnDevice() => _parameterMirror = ParameterMirror.DeviceNewer;

    /// <summary>Something other than a backward pass wrote the device's gradients (a sum over ranks): the host copy is stale.</summary>
    internal void GradientsChangedOnDevice() => _gradientsStale = true;

    /// <summary>Binds <paramref name="optimizer"/> unless it is the bound one, so that its momentum is on the device.</summary>
    internal void EnsureBound(Sgd optimizer)
    {
        if (!ReferenceEquals(optimizer, _boundOptimizer)) BindOptimizer(optimizer);
    }

    private void DownloadParametersIfDeviceNewer()
    {
        if (_parameterMirror != ParameterMirror.DeviceNewer) return;
        _runner.DownloadParameters(_parameters);
        _parameterMirror = ParameterMirror.InSync;
    }

    private void UploadParametersIfHostMayBeNewer()
    {
        if (_parameterMirror != ParameterMirror.HostMayBeNewer) return;
        _runner.UploadParameters(_parameters);
        _parameterMirror = ParameterMirror.InSync;
    }

    /// <summary>Frees the device buffers and modules, and the device when <see cref="Create"/> opened it.</summary>
    public void Dispose()
    {
        _runner.Dispose();
        _ownedDevice?.Dispose();
    }
}
