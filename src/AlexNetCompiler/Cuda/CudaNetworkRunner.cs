using System.Diagnostics;

namespace AlexNetCompiler.Cuda;

/// <summary>How the runner compiles the network's kernels.</summary>
/// <param name="Tf32">Define ALEXNET_TF32: GEMMs on tensor cores with TF32 inputs and FP32 accumulation.</param>
/// <param name="Cache">Kernel cache; null compiles every time.</param>
/// <param name="Architecture">Override the target ("sm_90", or "compute_90" for PTX); null uses the device's.</param>
/// <param name="GemmTiles">
/// GEMM block tiles to compile the network for (one module each). With one tile every GEMM uses it; with several
/// the runner times each GEMM kernel with every tile at maxBatch when it is created and keeps the fastest per
/// kernel (as cuDNN's benchmark mode does). Null means CudaGemmTile.All.
/// </param>
public sealed record CudaRunnerOptions(bool Tf32 = false, KernelCache? Cache = null, string? Architecture = null, IReadOnlyList<CudaGemmTile>? GemmTiles = null);

/// <summary>What autotuning measured for one GEMM kernel: milliseconds per tile (at maxBatch) and the tile kept.</summary>
public sealed record GemmTuning(string Kernel, CudaGemmTile Chosen, IReadOnlyDictionary<CudaGemmTile, double> Milliseconds);

/// <summary>
/// Runs a generated network on one GPU by executing its CudaLaunchPlan: compiles CudaSource with NVRTC
/// (through the kernel cache) once per GEMM tile asked for, allocates the planned buffers for maxBatch, picks
/// each GEMM kernel's tile (by timing when there is a choice), and launches forward, loss, backward and the SGD
/// update on the default stream. Parameters live on the device; upload and download them to compare with (or
/// hand over to) the CPU backend.
/// </summary>
public sealed class CudaNetworkRunner : IDisposable
{
    private const int TuningRepetitions = 3;
    /// <summary>The prelude's in-place scaling kernel (alexnet_prelude.cuh), compiled into every module.</summary>
    private const string ScaleKernel = "scale_buffer";

    private readonly List<CudaModule> _modules = [];
    private readonly Dictionary<string, (CudaKernel Kernel, CudaGemmTile Tile)> _kernels = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DeviceBuffer> _buffers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, CudaLaunch> _gemmLaunches; // each GEMM kernel's launch, in plan order
    private readonly float[] _losses;
    private long _sgdSteps;
    private CudaKernel? _scaleKernel;

    public CudaNetworkRunner(CudaDevice device, CudaLaunchPlan plan, string source, int maxBatch, CudaRunnerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxBatch);
        options ??= new CudaRunnerOptions();
        Device = device;
        Plan = plan;
        MaxBatch = maxBatch;
        Options = options;
        IReadOnlyList<CudaGemmTile> tiles = options.GemmTiles ?? CudaGemmTile.All;
        if (tiles.Count == 0) throw new ArgumentException("CudaRunnerOptions.GemmTiles is empty; give at least one tile, or null for all.", nameof(options));
        foreach (CudaGemmTile tile in tiles)
        {
            if (!CudaGemmTile.All.Contains(tile))
                throw new ArgumentException($"GEMM tile {tile} is not supported; use one of {string.Join(", ", CudaGemmTile.All)}.", nameof(options));
        }
        GemmTiles = tiles.Distinct().ToArray();
        _gemmLaunches = plan.Forward.Concat(plan.Loss).Concat(plan.Backward).OfType<CudaLaunch>().Where(l => l.Gemm is not null)
            .GroupBy(l => l.Kernel).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);

        foreach (CudaBufferSpec spec in plan.Buffers)
        {
            // Kernels index with 32-bit ints; the plan's buffers bound every index they compute.
            if (spec.Length(maxBatch) >= int.MaxValue)
                throw new ArgumentOutOfRangeException(nameof(maxBatch), $"{plan.NetworkName}: buffer '{spec.Name}' would hold {spec.Length(maxBatch)} elements at batch {maxBatch}; the CUDA kernels index with 32-bit integers, so use a smaller maxBatch.");
        }

        Architecture = options.Architecture ?? device.Architecture;
        var resources = new Dictionary<CudaGemmTile, IReadOnlyList<KernelResources>>();
        var kernelsByTile = new Dictionary<CudaGemmTile, Dictionary<string, CudaKernel>>();
        try
        {
            var stopwatch = Stopwatch.StartNew();
            bool allHits = true;
            foreach (CudaGemmTile tile in GemmTiles)
            {
                NvrtcOutput compiled = Compile(plan, source, Architecture, options.Tf32, tile, options.Cache, out bool hit);
                allHits &= hit;
                resources[tile] = PtxasReport.Parse(compiled.Log);
                CudaModule module = device.LoadModule(compiled);
                _modules.Add(module);
                kernelsByTile[tile] = plan.KernelNames.ToDictionary(name => name, module.GetKernel, StringComparer.Ordinal);
            }
            CompileTime = stopwatch.Elapsed;
            CacheHit = allHits;
            ResourcesByTile = resources;

            foreach (CudaBufferSpec spec in plan.Buffers) _buffers[spec.Name] = device.Allocate(Math.Max(4, spec.Length(maxBatch) * 4));
            foreach (string required in new[] { CudaLaunchPlan.Input, CudaLaunchPlan.Labels, CudaLaunchPlan.Losses, CudaLaunchPlan.Parameters, CudaLaunchPlan.Gradients, CudaLaunchPlan.Velocity, plan.LogitsBuffer })
                if (!_buffers.ContainsKey(required)) throw new InvalidOperationException($"{plan.NetworkName}: the launch plan has no '{required}' buffer.");

            // Kernels that are not GEMMs do not depend on the tile: take them from the first module.
            CudaGemmTile first = GemmTiles[0];
            foreach (string name in plan.KernelNames) _kernels[name] = (kernelsByTile[first][name], first);
            GemmTunings = GemmTiles.Count > 1 ? Tune(kernelsByTile) : [];

            // Tuning ran the GEMMs on whatever the buffers held; the state the passes rely on starts here.
            _buffers[CudaLaunchPlan.Velocity].Zero();
            _buffers[CudaLaunchPlan.Gradients].Zero();
            device.Synchronize();
        }
        catch
        {
            Dispose();
            throw;
        }
        _losses = new float[maxBatch];
    }

    /// <summary>
    /// Compiles one module of a network (one precision, one GEMM tile) exactly as a runner does, through the cache
    /// when one is given. Needs NVRTC but no GPU: it fills a kernel cache ahead of time for a machine that should not
    /// compile (the packed GPU check), under the very keys a runner on that machine looks up.
    /// </summary>
    public static NvrtcOutput Compile(CudaLaunchPlan plan, string source, string architecture, bool tf32, CudaGemmTile tile, KernelCache? cache, out bool cacheHit)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var compileOptions = new List<string> { "--std=c++17", "--ptxas-options=-v" };
        if (tf32) compileOptions.Add("-DALEXNET_TF32");
        compileOptions.AddRange(tile.Defines);
        string programName = plan.NetworkName + ".cu";
        cacheHit = false;
        return cache is not null
            ? cache.GetOrCompile(source, programName, architecture, compileOptions, out cacheHit, CudaPrelude.Headers)
            : Nvrtc.Compile(source, programName, architecture, compileOptions, CudaPrelude.Headers);
    }

    public CudaDevice Device { get; }
    public CudaLaunchPlan Plan { get; }
    public CudaRunnerOptions Options { get; }
    public int MaxBatch { get; }
    public string Architecture { get; }
    public TimeSpan CompileTime { get; }
    public bool CacheHit { get; }
    /// <summary>The GEMM tiles compiled, in the order given.</summary>
    public IReadOnlyList<CudaGemmTile> GemmTiles { get; }
    /// <summary>Registers and spills per kernel and tile, from ptxas (empty for PTX targets).</summary>
    public IReadOnlyDictionary<CudaGemmTile, IReadOnlyList<KernelResources>> ResourcesByTile { get; }
    /// <summary>Registers and spills of the kernels as launched (each GEMM kernel from the module of its tile).</summary>
    public IReadOnlyList<KernelResources> Resources =>
        [.. _kernels.SelectMany(k => ResourcesByTile[k.Value.Tile].Where(r => r.Kernel == k.Key)).OrderBy(r => r.Kernel, StringComparer.Ordinal)];
    /// <summary>The tile each GEMM kernel runs with.</summary>
    public IReadOnlyDictionary<string, CudaGemmTile> GemmTileChoices =>
        _gemmLaunches.Keys.ToDictionary(name => name, name => _kernels[name].Tile, StringComparer.Ordinal);
    /// <summary>What autotuning measured, per GEMM kernel in plan order; empty when only one tile was compiled.</summary>
    public IReadOnlyList<GemmTuning> GemmTunings { get; } = [];

    /// <summary>
    /// Times every GEMM launch of the plan with each tile's kernel at maxBatch (one warm-up launch, then the mean of
    /// TuningRepetitions between GPU events; dropout off) and keeps the fastest. The launches read and write the
    /// planned buffers, so this must run before anything the passes depend on is in them.
    /// </summary>
    private List<GemmTuning> Tune(Dictionary<CudaGemmTile, Dictionary<string, CudaKernel>> kernelsByTile)
    {
        var tunings = new List<GemmTuning>();
        using CudaEvent start = Device.CreateEvent();
        using CudaEvent end = Device.CreateEvent();
        Span<KernelArgument> args = stackalloc KernelArgument[16];
        foreach (CudaLaunch launch in _gemmLaunches.Values)
        {
            if (launch.Args.Length > args.Length) throw new InvalidOperationException($"Kernel '{launch.Kernel}' has more than {args.Length} arguments.");
            for (int i = 0; i < launch.Args.Length; i++) args[i] = Argument(launch.Args[i], MaxBatch, null);
            var times = new Dictionary<CudaGemmTile, double>();
            foreach (CudaGemmTile tile in GemmTiles)
            {
                CudaKernel kernel = kernelsByTile[tile][launch.Kernel];
                var (x, y, z) = launch.Grid(MaxBatch, tile);
                kernel.Launch(x, y, z, (uint)launch.BlockSize, 0, null, args[..launch.Args.Length]);
                start.Record();
                for (int r = 0; r < TuningRepetitions; r++) kernel.Launch(x, y, z, (uint)launch.BlockSize, 0, null, args[..launch.Args.Length]);
                end.Record();
                times[tile] = CudaEvent.ElapsedMilliseconds(start, end) / TuningRepetitions;
            }
            // Ties (and an event clock too coarse to tell) keep the earlier tile in GemmTiles' order.
            CudaGemmTile best = GemmTiles.Aggregate((a, b) => times[b] < times[a] ? b : a);
            _kernels[launch.Kernel] = (kernelsByTile[best][launch.Kernel], best);
            tunings.Add(new GemmTuning(launch.Kernel, best, times));
        }
        return tunings;
    }

    public void UploadParameters(ReadOnlySpan<float> parameters) => Upload(CudaLaunchPlan.Parameters, parameters, Plan.ParameterCount);
    public void DownloadParameters(Span<float> parameters) => Download(CudaLaunchPlan.Parameters, parameters, Plan.ParameterCount);
    public void DownloadGradients(Span<float> gradients) => Download(CudaLaunchPlan.Gradients, gradients, Plan.ParameterCount);
    public void UploadVelocity(ReadOnlySpan<float> velocity) => Upload(CudaLaunchPlan.Velocity, velocity, Plan.ParameterCount);
    public void DownloadVelocity(Span<float> velocity) => Download(CudaLaunchPlan.Velocity, velocity, Plan.ParameterCount);

    /// <summary>Number of SGD updates applied; 0 makes the next PyTorch-variant update start the momentum buffer.</summary>
    public long SgdSteps { get => _sgdSteps; set => _sgdSteps = value; }

    /// <summary>Inference: input [batch, C, H, W] to logits [batch, classes]; dropout off.</summary>
    public void Forward(ReadOnlySpan<float> input, int batch, Span<float> logits)
    {
        CheckBatch(batch);
        if (logits.Length < batch * Plan.ClassCount)
            throw new ArgumentException($"{Plan.NetworkName}.Forward: logits holds {logits.Length} floats; batch {batch} needs {batch * Plan.ClassCount}.", nameof(logits));
        UploadInput(input, batch);
        Run(Plan.Forward, batch, null);
        _buffers[Plan.LogitsBuffer].CopyTo(logits[..(batch * Plan.ClassCount)]);
    }

    /// <summary>Forward (dropout on when dropoutSeed has a value), softmax cross-entropy, backward into the gradients. Returns the mean loss.</summary>
    public float ForwardBackward(ReadOnlySpan<float> input, ReadOnlySpan<int> labels, int batch, ulong? dropoutSeed)
    {
        CheckBatch(batch);
        UploadInput(input, batch);
        UploadLabels(labels, batch);
        EnqueueForwardBackward(batch, dropoutSeed);
        return MeanLoss(batch);
    }

    /// <summary>ForwardBackward then the SGD update; returns the mean loss (synchronises once, to read it).</summary>
    public float TrainStep(ReadOnlySpan<float> input, ReadOnlySpan<int> labels, int batch, ulong? dropoutSeed, float learningRate, float momentum, float weightDecay, bool paperVariant = false)
    {
        CheckBatch(batch);
        UploadInput(input, batch);
        UploadLabels(labels, batch);
        EnqueueForwardBackward(batch, dropoutSeed);
        EnqueueSgd(learningRate, momentum, weightDecay, paperVariant);
        return MeanLoss(batch);
    }

    /// <summary>Copies the logits [batch, classes] of the last forward pass (inference or training) to the host.</summary>
    public void DownloadLogits(Span<float> logits, int batch)
    {
        CheckBatch(batch);
        if (logits.Length < batch * Plan.ClassCount)
            throw new ArgumentException($"{Plan.NetworkName}.DownloadLogits: logits holds {logits.Length} floats; batch {batch} needs {batch * Plan.ClassCount}.", nameof(logits));
        _buffers[Plan.LogitsBuffer].CopyTo(logits[..(batch * Plan.ClassCount)]);
    }

    /// <summary>Copies one batch to the device input buffers (for EnqueueTrainStep loops that time the GPU alone).</summary>
    public void SetBatch(ReadOnlySpan<float> input, ReadOnlySpan<int> labels, int batch)
    {
        CheckBatch(batch);
        UploadInput(input, batch);
        UploadLabels(labels, batch);
    }

    /// <summary>Enqueues forward, loss and backward on the current device buffers without waiting.</summary>
    public void EnqueueForwardBackward(int batch, ulong? dropoutSeed)
    {
        CheckBatch(batch);
        Run(Plan.Forward, batch, dropoutSeed);
        Run(Plan.Loss, batch, dropoutSeed);
        Run(Plan.Backward, batch, dropoutSeed);
    }

    /// <summary>Enqueues only the training-mode forward pass (for timing).</summary>
    public void EnqueueForward(int batch, ulong? dropoutSeed)
    {
        CheckBatch(batch);
        Run(Plan.Forward, batch, dropoutSeed);
    }

    /// <summary>Enqueues the SGD update over the flat parameter buffer (PyTorch semantics unless paperVariant).</summary>
    public void EnqueueSgd(float learningRate, float momentum, float weightDecay, bool paperVariant = false)
    {
        CudaKernel sgd = _kernels[Plan.SgdKernel].Kernel;
        int count = checked((int)Plan.ParameterCount);
        sgd.Launch((uint)((count + CudaContract.ThreadsPerBlock - 1) / CudaContract.ThreadsPerBlock), 1, 1, CudaContract.ThreadsPerBlock, 0, null,
        [
            KernelArgument.Pointer(_buffers[CudaLaunchPlan.Parameters]),
            KernelArgument.Pointer(_buffers[CudaLaunchPlan.Gradients]),
            KernelArgument.Pointer(_buffers[CudaLaunchPlan.Velocity]),
            KernelArgument.Int32(count),
            KernelArgument.Float32(learningRate),
            KernelArgument.Float32(momentum),
            KernelArgument.Float32(weightDecay),
            KernelArgument.Int32(_sgdSteps == 0 ? 1 : 0),
            KernelArgument.Int32(paperVariant ? 1 : 0),
        ]);
        _sgdSteps++;
    }

    /// <summary>
    /// Enqueues gradients *= factor on the default stream (the prelude's scale_buffer): a data-parallel shard's mean
    /// gradient weighted by its share of the batch before the ranks sum.
    /// </summary>
    public void EnqueueScaleGradients(float factor)
    {
        _scaleKernel ??= _modules[0].GetKernel(ScaleKernel);
        int count = checked((int)Plan.ParameterCount);
        _scaleKernel.Launch((uint)((count + CudaContract.ThreadsPerBlock - 1) / CudaContract.ThreadsPerBlock), 1, 1, CudaContract.ThreadsPerBlock, 0, null,
        [
            KernelArgument.Pointer(_buffers[CudaLaunchPlan.Gradients]),
            KernelArgument.Int32(count),
            KernelArgument.Float32(factor),
        ]);
    }

    /// <summary>Sets the gradients to zero (a data-parallel rank without samples in a batch adds nothing to the sum).</summary>
    public void ZeroGradients() => _buffers[CudaLaunchPlan.Gradients].Zero();

    /// <summary>The device buffers of the flat parameters, gradients and momentum, for collectives that work on device memory.</summary>
    internal DeviceBuffer ParameterBuffer => _buffers[CudaLaunchPlan.Parameters];
    internal DeviceBuffer GradientBuffer => _buffers[CudaLaunchPlan.Gradients];
    internal DeviceBuffer VelocityBuffer => _buffers[CudaLaunchPlan.Velocity];

    /// <summary>
    /// Runs forward, loss and backward once with an event after every step and returns each step's GPU time
    /// in milliseconds (CudaZero steps included), for reporting kernels against peak.
    /// </summary>
    public IReadOnlyList<(CudaStep Step, double Milliseconds)> ProfileForwardBackward(int batch, ulong? dropoutSeed)
    {
        CheckBatch(batch);
        CudaStep[] all = [.. Plan.Forward, .. Plan.Loss, .. Plan.Backward];
        var events = new CudaEvent[all.Length + 1];
        try
        {
            for (int i = 0; i < events.Length; i++) events[i] = Device.CreateEvent();
            Device.Synchronize();
            events[0].Record();
            for (int i = 0; i < all.Length; i++)
            {
                Run([all[i]], batch, dropoutSeed);
                events[i + 1].Record();
            }
            var result = new List<(CudaStep, double)>(all.Length);
            for (int i = 0; i < all.Length; i++) result.Add((all[i], CudaEvent.ElapsedMilliseconds(events[i], events[i + 1])));
            return result;
        }
        finally
        {
            foreach (CudaEvent? e in events) e?.Dispose();
        }
    }

    private void Run(CudaStep[] steps, int batch, ulong? dropoutSeed)
    {
        Span<KernelArgument> args = stackalloc KernelArgument[16];
        foreach (CudaStep step in steps)
        {
            switch (step)
            {
                case CudaZero zero:
                    _buffers[zero.Buffer].Zero(zero.Offset * 4, zero.Length * 4);
                    break;
                case CudaLaunch launch:
                {
                    if (launch.Args.Length > args.Length) throw new InvalidOperationException($"Kernel '{launch.Kernel}' has more than {args.Length} arguments.");
                    for (int i = 0; i < launch.Args.Length; i++) args[i] = Argument(launch.Args[i], batch, dropoutSeed);
                    var (kernel, tile) = _kernels[launch.Kernel];
                    var (x, y, z) = launch.Grid(batch, tile);
                    kernel.Launch(x, y, z, (uint)launch.BlockSize, 0, null, args[..launch.Args.Length]);
                    break;
                }
                default:
                    throw new InvalidOperationException($"Unknown launch plan step {step.GetType().Name}.");
            }
        }
    }

    private KernelArgument Argument(CudaArg arg, int batch, ulong? dropoutSeed) => arg.Kind switch
    {
        CudaArgKind.Buffer => KernelArgument.UInt64(_buffers[arg.Buffer].Pointer + (ulong)arg.Offset * 4),
        CudaArgKind.Null => KernelArgument.UInt64(0),
        CudaArgKind.Batch => KernelArgument.Int32(batch),
        CudaArgKind.DropoutSeed => KernelArgument.UInt64(dropoutSeed ?? 0),
        CudaArgKind.DropoutEnabled => KernelArgument.Int32(dropoutSeed.HasValue ? 1 : 0),
        _ => throw new InvalidOperationException($"Unknown kernel argument kind {arg.Kind}."),
    };

    private float MeanLoss(int batch)
    {
        // The copy waits for every kernel before it on the default stream, so launch errors surface here too.
        _buffers[CudaLaunchPlan.Losses].CopyTo(_losses.AsSpan(0, batch));
        double sum = 0;
        for (int i = 0; i < batch; i++) sum += _losses[i];
        return (float)(sum / batch);
    }

    private void UploadInput(ReadOnlySpan<float> input, int batch)
    {
        int needed = batch * Plan.InputLength;
        if (input.Length < needed)
            throw new ArgumentException($"{Plan.NetworkName}: input holds {input.Length} floats; batch {batch} needs {needed} ({Plan.InputLength} per sample).", nameof(input));
        _buffers[CudaLaunchPlan.Input].CopyFrom(input[..needed]);
    }

    private void UploadLabels(ReadOnlySpan<int> labels, int batch)
    {
        if (labels.Length < batch)
            throw new ArgumentException($"{Plan.NetworkName}: labels holds {labels.Length} entries; batch is {batch}.", nameof(labels));
        for (int i = 0; i < batch; i++)
        {
            if ((uint)labels[i] >= (uint)Plan.ClassCount)
                throw new ArgumentOutOfRangeException(nameof(labels), $"{Plan.NetworkName}: label {labels[i]} at index {i} is outside [0, {Plan.ClassCount}).");
        }
        _buffers[CudaLaunchPlan.Labels].CopyFrom(labels[..batch]);
    }

    private void Upload(string buffer, ReadOnlySpan<float> data, long expected)
    {
        if (data.Length != expected) throw new ArgumentException($"{Plan.NetworkName}: expected {expected} floats for '{buffer}', got {data.Length}.");
        _buffers[buffer].CopyFrom(data);
    }

    private void Download(string buffer, Span<float> data, long expected)
    {
        if (data.Length != expected) throw new ArgumentException($"{Plan.NetworkName}: expected {expected} floats for '{buffer}', got {data.Length}.");
        _buffers[buffer].CopyTo(data);
    }

    private void CheckBatch(int batch)
    {
        if (batch < 1 || batch > MaxBatch)
            throw new ArgumentOutOfRangeException(nameof(batch), $"{Plan.NetworkName}: batch {batch} is outside [1, {MaxBatch}] (the runner was created for maxBatch {MaxBatch}).");
    }

    public void Dispose()
    {
        foreach (DeviceBuffer b in _buffers.Values) b.Dispose();
        _buffers.Clear();
        foreach (CudaModule module in _modules) module.Dispose();
        _modules.Clear();
    }
}
