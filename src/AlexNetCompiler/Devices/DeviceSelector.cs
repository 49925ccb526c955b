using AlexNetCompiler.Cuda;
using AlexNetCompiler.Training;

namespace AlexNetCompiler.Devices;

/// <summary>Where to run: the CPU, a CUDA GPU, or CUDA when it works and else the CPU.</summary>
public enum DeviceRequest { Auto, Cpu, Cuda }

/// <summary>
/// The device a run trains on. For CUDA it owns the opened GPU and the runner with the compiled kernels; the
/// runner passes to the trainer's engine through <see cref="EngineFactory"/>.
/// </summary>
public sealed class DeviceChoice : IDisposable
{
    private CudaNetworkRunner? _runner;

    internal DeviceChoice(string name, string? notice, CudaDevice? device, CudaNetworkRunner? runner)
    {
        Name = name;
        Notice = notice;
        Device = device;
        _runner = runner;
    }

    /// <summary>"cpu" or "cuda".</summary>
    public string Name { get; }
    /// <summary>Set when <c>auto</c> fell back to the CPU: one line saying why.</summary>
    public string? Notice { get; }
    public CudaDevice? Device { get; }

    /// <summary>
    /// The trainer's engine factory: null for the CPU (the trainer's default); for CUDA it hands over the runner
    /// (once: the engine owns it from then on).
    /// </summary>
    public Func<INetwork, Sgd, ITrainingEngine>? EngineFactory => _runner is null ? null : (network, optimizer) =>
    {
        CudaNetworkRunner runner = _runner ?? throw new InvalidOperationException("The CUDA runner was already handed to an engine.");
        var engine = new CudaTrainingEngine(runner, network, optimizer);
        _runner = null; // the engine owns it now; until here Dispose still frees it
        return engine;
    };

    public void Dispose()
    {
        _runner?.Dispose();
        _runner = null;
        Device?.Dispose();
    }
}

/// <summary>Chooses where training runs. The CPU always works; CUDA needs the NVIDIA driver, a GPU and NVRTC.</summary>
public static class DeviceSelector
{
    /// <summary>
    /// <c>cpu</c>: the CPU. <c>cuda</c>: opens GPU 0 and compiles the network's generated kernels (through the
    /// on-disk kernel cache), or throws <see cref="CudaUnavailableException"/> with the reason. <c>auto</c>: CUDA when that works, otherwise the CPU
    /// with a one-line notice saying why.
    /// </summary>
    public static DeviceChoice Resolve(DeviceRequest request, CudaLaunchPlan plan, string cudaSource, int maxBatch, bool tf32 = false)
    {
        if (request == DeviceRequest.Cpu) return new DeviceChoice("cpu", null, null, null);

        if (!CudaDevice.TryOpen(0, out CudaDevice? device, out string? reason))
            return Unavailable(request, reason!);
        try
        {
            var runner = new CudaNetworkRunner(device!, plan, cudaSource, maxBatch,
                new CudaRunnerOptions(tf32, new KernelCache(KernelCache.DefaultDirectory)));
            return new DeviceChoice("cuda", null, device, runner);
        }
        catch (Exception e) when (e is CudaException or CudaUnavailableException or IOException)
        {
            string name = device!.Name;
            device.Dispose();
            return Unavailable(request, $"{name}: the kernels could not be compiled or loaded: {e.Message}");
        }
    }

    private static DeviceChoice Unavailable(DeviceRequest request, string reason)
    {
        reason = reason.TrimEnd('.');
        if (request == DeviceRequest.Cuda)
            throw new CudaUnavailableException($"{reason}.");
        return new DeviceChoice("cpu", $"Device auto: {reason}; running on the CPU.", null, null);
    }
}
