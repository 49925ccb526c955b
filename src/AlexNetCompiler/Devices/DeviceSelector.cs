using AlexNetCompiler.Cuda;
using AlexNetCompiler.Distributed;
using AlexNetCompiler.Training;

namespace AlexNetCompiler.Devices;

/// <summary>Where to run: the CPU, a CUDA GPU, or CUDA when it works and else the CPU.</summary>
public enum DeviceRequest { Auto, Cpu, Cuda }

/// <summary>
/// The device a run trains on. For CUDA it owns the network built on the GPU (its compiled kernels and buffers),
/// which passes to the trainer's engine through <see cref="EngineFactory"/>.
/// </summary>
public sealed class DeviceChoice : IDisposable
{
    private CudaNetwork? _cudaNetwork;

    internal DeviceChoice(string name, string? notice, CudaNetwork? cudaNetwork)
    {
        Name = name;
        Notice = notice;
        _cudaNetwork = cudaNetwork;
    }

    /// <summary>"cpu" or "cuda".</summary>
    public string Name { get; }
    /// <summary>Set when <c>auto</c> fell back to the CPU: one line saying why.</summary>
    public string? Notice { get; }

    /// <summary>
    /// The trainer's engine factory: null for the CPU (the trainer's default); for CUDA it hands over the
    /// <see cref="CudaNetwork"/> (once: the engine owns it from then on).
    /// </summary>
    public Func<INetwork, Sgd, ITrainingEngine>? EngineFactory => _cudaNetwork is null ? null : (host, optimizer) =>
    {
        CudaNetwork network = _cudaNetwork ?? throw new InvalidOperationException("The CUDA network was already handed to an engine.");
        var engine = new CudaTrainingEngine(network, host, optimizer);
        _cudaNetwork = null; // the engine owns it now; until here Dispose still frees it
        return engine;
    };

    /// <summary>The GPU of a CUDA choice while its network has not been handed to an engine (null for the CPU).</summary>
    public CudaDevice? CudaDevice => _cudaNetwork?.Device;

    /// <summary>
    /// For CUDA: the trainer's engine factory for data-parallel training over <paramref name="communicator"/> (NCCL on
    /// this choice's GPU), which hands over the <see cref="CudaNetwork"/> and the communicator to a
    /// <see cref="CudaDataParallelEngine"/> (once).
    /// </summary>
    public Func<INetwork, Sgd, ITrainingEngine> DataParallelEngineFactory(NcclCommunicator communicator) => (host, optimizer) =>
    {
        CudaNetwork network = _cudaNetwork ?? throw new InvalidOperationException("This device choice holds no CUDA network to hand to an engine.");
        var engine = new CudaDataParallelEngine(network, host, optimizer, communicator);
        _cudaNetwork = null;
        return engine;
    };

    public void Dispose()
    {
        _cudaNetwork?.Dispose();
        _cudaNetwork = null;
    }
}

/// <summary>Chooses where training runs. The CPU always works; CUDA needs the NVIDIA driver, a GPU and NVRTC.</summary>
public static class DeviceSelector
{
    /// <summary>
    /// <c>cpu</c>: the CPU. <c>cuda</c>: builds the network on GPU 0 (<see cref="CudaNetwork.Create"/>: its generated
    /// kernels compiled through the on-disk kernel cache), or throws <see cref="CudaUnavailableException"/> with the
    /// reason. <c>auto</c>: CUDA when that works, otherwise the CPU with a one-line notice saying why.
    /// </summary>
    /// <param name="descriptor">The generated class's <c>Model</c>.</param>
    /// <param name="plan">The generated class's <c>CudaPlan</c>.</param>
    /// <param name="cudaSource">The generated class's <c>CudaSource</c>.</param>
    /// <param name="deviceOrdinal">The GPU to use (a data-parallel rank's GPU on its machine); 0 by default.</param>
    public static DeviceChoice Resolve(DeviceRequest request, NetworkDescriptor descriptor, CudaLaunchPlan plan, string cudaSource, int maxBatch, bool tf32 = false,
        int deviceOrdinal = 0)
    {
        if (request == DeviceRequest.Cpu) return new DeviceChoice("cpu", null, null);
        try
        {
            var network = CudaNetwork.Create(descriptor, plan, cudaSource, maxBatch, new CudaRunnerOptions(tf32, new KernelCache(KernelCache.DefaultDirectory)),
                deviceOrdinal);
            return new DeviceChoice("cuda", null, network);
        }
        catch (CudaUnavailableException e) when (request == DeviceRequest.Auto)
        {
            return new DeviceChoice("cpu", $"Device auto: {e.Message.TrimEnd('.')}; running on the CPU.", null);
        }
    }
}
