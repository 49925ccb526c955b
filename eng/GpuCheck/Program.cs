// GPU check: forward, backward and 5 SGD steps on the GPU against the CPU backend (same weights, same batch,
// same dropout masks), in FP32 and TF32, for the canonical AlexNet, for the main job's FashionNet (whose
// `train --device cuda` runs these kernels) and for a small network of uncommon paths (unfused kernels); then
// the training step and the forward pass of the first two timed at batch 128.
// Prints a human-readable report and "RESULT key=value" lines for eng/gpu-check.sh.
using System.Diagnostics;
using System.Globalization;
using AlexNetCompiler;
using AlexNetCompiler.Cuda;
using AlexNetCompiler.Training;
using AlexNetCompiler.Tests.Networks;
using CanonicalAlexNet;
using FashionMnist;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;

int? checkBatch = null;
int timeBatch = 128, timedSteps = 20;
bool timing = true;
string[] nets = ["alexnet", "fashionnet", "unusual"], modes = ["fp32", "tf32"];
IReadOnlyList<CudaGemmTile> tiles = CudaGemmTile.All;
const string Usage = "Options: --check-batch=N --time-batch=N --steps=N --nets=alexnet,fashionnet,unusual --modes=fp32,tf32 --tiles=all|64x64,128x128,... --no-timing";
foreach (string arg in args)
{
    if (arg.StartsWith("--check-batch=", StringComparison.Ordinal)) checkBatch = int.Parse(arg[14..], CultureInfo.InvariantCulture);
    else if (arg.StartsWith("--time-batch=", StringComparison.Ordinal)) timeBatch = int.Parse(arg[13..], CultureInfo.InvariantCulture);
    else if (arg.StartsWith("--steps=", StringComparison.Ordinal)) timedSteps = int.Parse(arg[8..], CultureInfo.InvariantCulture);
    else if (arg.StartsWith("--nets=", StringComparison.Ordinal)) nets = arg[7..].Split(',');
    else if (arg.StartsWith("--modes=", StringComparison.Ordinal)) modes = arg[8..].Split(',');
    else if (arg.StartsWith("--tiles=", StringComparison.Ordinal))
    {
        try { tiles = CudaGemmTile.ParseList(arg[8..]); }
        catch (FormatException e) { Console.Error.WriteLine($"{e.Message} {Usage}"); return 2; }
    }
    else if (arg == "--no-timing") timing = false;
    else { Console.Error.WriteLine($"Unknown argument '{arg}'. {Usage}"); return 2; }
}
if (nets.Any(n => n is not ("alexnet" or "fashionnet" or "unusual")) || modes.Any(m => m is not ("fp32" or "tf32")))
{
    Console.Error.WriteLine($"Unknown network or mode in '{string.Join(',', nets)}' / '{string.Join(',', modes)}'. {Usage}");
    return 2;
}

// The prelude every generated source includes is an embedded resource: reading it here checks that it survived
// NativeAOT publishing before any GPU is involved.
Console.WriteLine($"Prelude: {CudaPrelude.HeaderName} version {CudaPrelude.Version}, {CudaPrelude.Source.Length:N0} characters");
if (!CudaDevice.TryOpen(0, out CudaDevice? device, out string? reason))
{
    Console.Error.WriteLine("GPU check: " + reason);
    return 3;
}
using (device)
{
    Console.WriteLine($"Device: {device}");
    Console.WriteLine($"NVRTC: {Nvrtc.Version.Major}.{Nvrtc.Version.Minor}");
    Console.WriteLine($"Network: {AlexNet2012.CudaPlan.NetworkName}, {AlexNet2012.ParameterCount:N0} parameters, " +
                      $"{AlexNet2012.CudaPlan.TrainingFlopsPerSample / 1e9:F2} GFLOP per image per training step");
    var cache = new KernelCache(Path.Combine(Path.GetTempPath(), "alexnet-gpu-check-kernels"));
    bool allPassed = true;
    var alexNet = new CheckedNetwork("alexnet", batch => new AlexNet2012(batch), AlexNet2012.Model, AlexNet2012.CudaPlan, AlexNet2012.CudaSource, InitScheme.He, DefaultCheckBatch: 16);
    var fashionNet = new CheckedNetwork("fashionnet", batch => new FashionNet(batch), FashionNet.Model, FashionNet.CudaPlan, FashionNet.CudaSource, InitScheme.He, DefaultCheckBatch: 64);
    // Checked for correctness only: a tiny network whose speed says nothing.
    var unusual = new CheckedNetwork("unusual", batch => new UnusualNet(batch), UnusualNet.Model, UnusualNet.CudaPlan, UnusualNet.CudaSource, InitScheme.He, DefaultCheckBatch: 8);
    foreach (CheckedNetwork net in new[] { alexNet, fashionNet, unusual }.Where(n => nets.Contains(n.Key)))
    {
        // Every GEMM tile is checked on its own (each compiles to different kernels); timing then lets the runner
        // pick a tile per kernel among them, as a user's runner does.
        int batch = checkBatch ?? net.DefaultCheckBatch;
        CpuReference reference = CpuReference.Compute(net, batch, RandomInput(batch * net.Plan.InputLength, 7), RandomLabels(batch, net.Plan.ClassCount, 7));
        foreach (bool tf32 in modes.Select(m => m == "tf32"))
        {
            foreach (CudaGemmTile tile in tiles) allPassed &= CheckAgainstCpu(device!, cache, net, reference, tf32, tile);
            if (timing && net != unusual) Time(device!, cache, net, tf32, tiles, timeBatch, timedSteps, profile: net == alexNet);
        }
    }
    Console.WriteLine($"RESULT correctness={(allPassed ? "pass" : "FAIL")}");
    return allPassed ? 0 : 1;
}

static float[] RandomInput(int count, ulong seed)
{
    var rng = new Random((int)seed);
    var x = new float[count];
    for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
    return x;
}

static int[] RandomLabels(int batch, int classes, ulong seed)
{
    var rng = new Random((int)seed + 1);
    return Enumerable.Range(0, batch).Select(_ => rng.Next(classes)).ToArray();
}

// Tolerances. The GPU sums in a different order than the CPU (tiled GEMMs, atomics over reduction chunks), so
// element-wise equality is not expected; the comparison is the relative L2 error ||gpu - cpu|| / ||cpu||.
// FP32: float32 rounding over reductions of up to 387,200 terms stays near 1e-6..1e-5 relative (measured on the
// CUDA emulator: 1e-6..3e-6 for every tensor); 1e-4 leaves headroom but catches any indexing fault (those give
// errors of order 1). Each SGD step's parameter *change* (the parameters themselves barely move) and the
// momentum buffer after five steps: 1e-3.
// TF32 rounds every GEMM input to a 10-bit mantissa (relative 2^-11 = 4.9e-4): forward logits and loss 1e-2.
// Gradients are looser, 1e-1: a ReLU whose input lies within that rounding of zero is on for one backend and
// off for the other, moving a whole gradient element, and a fraction f of such elements alone gives a relative
// L2 error of about sqrt(f). The emulator, rounding exactly as cvt.rna.tf32.f32 does, measured 1e-2..3.4e-2 for
// FashionNet's conv gradients (5e-4..8e-4 where the ReLU output only reaches backward through a max pool's
// winners, far from zero); for AlexNet at batch 2, 3.4e-2..6.6e-2 upstream of its first hidden ReLU. Indexing
// faults are still of order 1, and the emulator checks the tensor-core path with rounding switched off against
// the FP32 tolerances. The SGD steps (below) are judged per step: 1e-3 in FP32, 1e-1 in TF32, like a gradient.
static bool CheckAgainstCpu(CudaDevice device, KernelCache cache, CheckedNetwork net, CpuReference cpu, bool tf32, CudaGemmTile tile)
{
    string mode = tf32 ? "tf32" : "fp32";
    double passTolerance = tf32 ? 1e-2 : 1e-4, gradientTolerance = tf32 ? 1e-1 : 1e-4, stepTolerance = tf32 ? 1e-1 : 1e-3;
    CudaLaunchPlan plan = net.Plan;
    int batch = cpu.Batch;
    Console.WriteLine();
    Console.WriteLine($"== Correctness, {plan.NetworkName}, {mode}, GEMM tile {tile}, batch {batch} (relative L2 tolerance {passTolerance:G2} for logits and loss, " +
                      $"{gradientTolerance:G2} per gradient, {stepTolerance:G2} per SGD step and for the momentum buffer)");
    using var gpu = new CudaNetworkRunner(device, plan, net.Source, batch, new CudaRunnerOptions(tf32, cache, GemmTiles: [tile]));
    Console.WriteLine($"compiled for {gpu.Architecture} in {gpu.CompileTime.TotalSeconds:F1} s (cache {(gpu.CacheHit ? "hit" : "miss")}); max registers " +
                      $"{(gpu.Resources.Count == 0 ? 0 : gpu.Resources.Max(r => r.Registers))}, spills {gpu.Resources.Sum(r => r.SpillStoreBytes)} B");
    gpu.UploadParameters(cpu.InitialParameters);
    bool ok = true;

    // A digest of everything the GPU computed: equal digests mean bit-identical results (the CUDA emulator's
    // race check compares runs in two thread orders; on a GPU, atomics make it vary from run to run).
    using var digest = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
    void Digest(ReadOnlySpan<float> values) => digest.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values));

    var gpuLogits = new float[cpu.Logits.Length];
    gpu.Forward(cpu.Input, batch, gpuLogits);
    ok &= Report($"{mode} forward logits", cpu.Logits, gpuLogits, passTolerance);
    Digest(gpuLogits);

    float gpuLoss = gpu.ForwardBackward(cpu.Input, cpu.Labels, batch, CpuReference.DropoutSeed);
    ok &= Report($"{mode} loss (dropout on)", [cpu.Loss], [gpuLoss], passTolerance);
    var gpuGradients = new float[plan.ParameterCount];
    gpu.DownloadGradients(gpuGradients);
    Digest([gpuLoss]);
    Digest(gpuGradients);
    foreach (ParameterDescriptor p in net.Model.Parameters)
        ok &= Report($"{mode} gradient {p.Name}", cpu.Gradients.AsSpan(p.Offset, p.Length), gpuGradients.AsSpan(p.Offset, p.Length), gradientTolerance);

    // The SGD steps of CpuReference, each from the CPU's parameters before it (see there for why).
    gpu.SgdSteps = 0;
    var gpuParameters = new float[plan.ParameterCount];
    var gpuDelta = new float[plan.ParameterCount];
    double worstStep = 0, worstMaxAbs = 0;
    for (int step = 0; step < CpuReference.Steps; step++)
    {
        float[] before = cpu.ParametersBeforeStep[step];
        gpu.UploadParameters(before);
        float lg = gpu.TrainStep(cpu.Input, cpu.Labels, batch, CpuReference.StepSeed(step), CpuReference.Sgd.LearningRate, CpuReference.Sgd.Momentum, CpuReference.Sgd.WeightDecay);
        gpu.DownloadParameters(gpuParameters);
        Digest(gpuParameters);
        for (int i = 0; i < before.Length; i++) gpuDelta[i] = gpuParameters[i] - before[i];
        var (relative, maxAbs, finite) = Compare(cpu.StepDeltas[step], gpuDelta);
        worstStep = finite ? Math.Max(worstStep, relative) : double.PositiveInfinity;
        worstMaxAbs = Math.Max(worstMaxAbs, maxAbs);
        Console.WriteLine($"  step {step + 1}: loss cpu {cpu.StepLosses[step]:F6} gpu {lg:F6}, parameter change relative L2 {relative:E2}");
    }
    bool stepsOk = worstStep <= stepTolerance;
    Console.WriteLine($"  {(stepsOk ? "ok  " : "FAIL")} {mode} parameter change, worst of {CpuReference.Steps} steps: relative L2 {worstStep:E2}, max |diff| {worstMaxAbs:E2}");
    ok &= stepsOk;
    var gpuVelocity = new float[plan.ParameterCount];
    gpu.DownloadVelocity(gpuVelocity);
    ok &= Report($"{mode} momentum buffer after {CpuReference.Steps} steps", cpu.Velocity, gpuVelocity, stepTolerance);
    Digest(gpuVelocity);
    Console.WriteLine($"RESULT {net.Key}_{mode}_{tile}_gpu_digest={Convert.ToHexString(digest.GetHashAndReset())[..32]}");
    Console.WriteLine($"RESULT {net.Key}_{mode}_{tile}_correctness={(ok ? "pass" : "FAIL")}");
    return ok;
}

static (double Relative, double MaxAbs, bool Finite) Compare(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
{
    double diff = 0, norm = 0, maxAbs = 0;
    bool finite = true;
    for (int i = 0; i < expected.Length; i++)
    {
        double d = (double)actual[i] - expected[i];
        finite &= float.IsFinite(actual[i]);
        diff += d * d;
        norm += (double)expected[i] * expected[i];
        maxAbs = Math.Max(maxAbs, Math.Abs(d));
    }
    return (norm == 0 ? Math.Sqrt(diff) : Math.Sqrt(diff / norm), maxAbs, finite);
}

static bool Report(string what, ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double tolerance)
{
    var (relative, maxAbs, finite) = Compare(expected, actual);
    bool ok = finite && relative <= tolerance;
    Console.WriteLine($"  {(ok ? "ok  " : "FAIL")} {what}: relative L2 {relative:E2}, max |diff| {maxAbs:E2}{(finite ? "" : ", NON-FINITE values")}");
    return ok;
}

static void Time(CudaDevice device, KernelCache cache, CheckedNetwork net, bool tf32, IReadOnlyList<CudaGemmTile> tiles, int batch, int steps, bool profile = true)
{
    string mode = tf32 ? "tf32" : "fp32";
    CudaLaunchPlan plan = net.Plan;
    using var gpu = new CudaNetworkRunner(device, plan, net.Source, batch, new CudaRunnerOptions(tf32, cache, GemmTiles: tiles));
    var parameters = new float[plan.ParameterCount];
    Initializer.Initialize(net.Model, parameters, net.Init, seed: 1);
    gpu.UploadParameters(parameters);
    gpu.SetBatch(RandomInput(batch * plan.InputLength, 3), RandomLabels(batch, plan.ClassCount, 3), batch);
    using var start = device.CreateEvent();
    using var end = device.CreateEvent();

    for (int i = 0; i < 3; i++) { gpu.EnqueueForwardBackward(batch, (ulong)i); gpu.EnqueueSgd(0.01f, 0.9f, 5e-4f); }
    device.Synchronize();
    start.Record();
    for (int i = 0; i < steps; i++) { gpu.EnqueueForwardBackward(batch, (ulong)i); gpu.EnqueueSgd(0.01f, 0.9f, 5e-4f); }
    end.Record();
    double trainMs = CudaEvent.ElapsedMilliseconds(start, end) / steps;

    start.Record();
    for (int i = 0; i < steps; i++) gpu.EnqueueForward(batch, null);
    end.Record();
    double forwardMs = CudaEvent.ElapsedMilliseconds(start, end) / steps;

    double peak = PeakTflops(device, tf32);
    double trainTflops = plan.TrainingFlopsPerSample * (double)batch / (trainMs * 1e-3) / 1e12;
    double forwardTflops = plan.ForwardFlopsPerSample * (double)batch / (forwardMs * 1e-3) / 1e12;
    Console.WriteLine();
    Console.WriteLine($"== Timing, {plan.NetworkName}, {mode}, batch {batch}, mean of {steps} steps (GPU events; peak assumed {peak:F0} TFLOP/s {(tf32 ? "TF32 tensor" : "FP32")} dense)");
    Console.WriteLine($"training step: {trainMs:F2} ms, {batch / (trainMs * 1e-3):F0} images/s, {trainTflops:F1} TFLOP/s, {trainTflops / peak:P1} of peak");
    Console.WriteLine($"forward:       {forwardMs:F2} ms, {batch / (forwardMs * 1e-3):F0} images/s, {forwardTflops:F1} TFLOP/s, {forwardTflops / peak:P1} of peak");
    string key = net.Key == "alexnet" ? mode : net.Key + "_" + mode; // eng/gpu-check.sh compares the alexnet figures with PyTorch
    Console.WriteLine($"RESULT {key}_train_images_per_s={batch / (trainMs * 1e-3):F1}");
    Console.WriteLine($"RESULT {key}_forward_images_per_s={batch / (forwardMs * 1e-3):F1}");
    Console.WriteLine($"RESULT {key}_train_tflops={trainTflops:F2}");
    Console.WriteLine($"RESULT {key}_train_peak_fraction={trainTflops / peak:F4}");
    if (gpu.GemmTunings.Count > 0)
    {
        // What the runner measured when it was created (batch, mean of 3 launches) and the tile it kept.
        Console.WriteLine($"GEMM tiles tried per kernel (ms at batch {batch}; * = kept):");
        Console.WriteLine($"  {"kernel",-32}" + string.Concat(gpu.GemmTiles.Select(t => $"{t,11}")));
        foreach (GemmTuning tuning in gpu.GemmTunings)
            Console.WriteLine($"  {tuning.Kernel,-32}" + string.Concat(gpu.GemmTiles.Select(t => $"{tuning.Milliseconds[t],10:F3}{(t == tuning.Chosen ? "*" : " ")}")));
        double untuned = gpu.GemmTunings.Sum(t => t.Milliseconds[gpu.GemmTiles[0]]), tuned = gpu.GemmTunings.Sum(t => t.Milliseconds[t.Chosen]);
        Console.WriteLine($"  GEMM kernels, one launch each: {untuned:F3} ms with {gpu.GemmTiles[0]} everywhere, {tuned:F3} ms as tuned ({untuned / tuned:F2}x)");
    }

    if (!profile) return;

    // Each step of one training pass, timed between GPU events.
    Console.WriteLine("per kernel (one forward + backward):");
    foreach (var (step, ms) in gpu.ProfileForwardBackward(batch, 1))
    {
        string name = step is CudaLaunch l ? l.Kernel + (gpu.GemmTileChoices.TryGetValue(l.Kernel, out CudaGemmTile t) ? $" [{t}]" : "") : "memset " + step.Comment;
        long flops = step is CudaLaunch launch ? launch.FlopsPerSample * (long)batch : 0;
        string rate = flops == 0 ? "" : $", {flops / (ms * 1e-3) / 1e12,6:F1} TFLOP/s = {flops / (ms * 1e-3) / 1e12 / peak,6:P1} of peak";
        Console.WriteLine($"  {name,-50} {ms,8:F3} ms{rate}");
    }
}

// Dense (non-sparse) peaks from NVIDIA's H100/H200 datasheets: SXM (and H200) 67 TFLOP/s FP32, 495 TF32
// tensor; PCIe 51 and 378. Other GPUs: estimated from SMs x clock x 128 FP32 lanes x 2 (FP32), x8 for TF32.
static double PeakTflops(CudaDevice device, bool tf32)
{
    string name = device.Name;
    if (name.Contains("H100", StringComparison.OrdinalIgnoreCase) && name.Contains("PCIe", StringComparison.OrdinalIgnoreCase))
        return tf32 ? 378 : 51;
    if (name.Contains("H100", StringComparison.OrdinalIgnoreCase) || name.Contains("H200", StringComparison.OrdinalIgnoreCase))
        return tf32 ? 495 : 67;
    double fp32 = device.MultiprocessorCount * (device.ClockRateKHz * 1e3) * 128 * 2 / 1e12;
    return tf32 ? fp32 * 8 : fp32;
}

/// <summary>A generated network with what the check needs of it: the CPU network, its model, and its CUDA plan and source.</summary>
internal sealed record CheckedNetwork(string Key, Func<int, INetwork> Create, NetworkDescriptor Model, CudaLaunchPlan Plan, string Source, InitScheme Init, int DefaultCheckBatch);

/// <summary>
/// What the CPU backend computes for one network and batch, once, for every GPU mode and tile to be compared with:
/// logits, loss and gradients (dropout on), then five SGD steps (torch.optim.SGD semantics with the paper's
/// momentum and weight decay) from the same start, each with its own dropout seed. The GPU gets the CPU's
/// parameters again before every step, while each side keeps its own momentum buffer and step count: left to run
/// freely, the two would drift apart through discrete events (a ReLU or a max pool deciding differently on a 1e-6
/// difference moves whole gradient elements; a fraction f of them gives a relative error near sqrt(f), 4e-3 after
/// 5 free steps of FashionNet at batch 64 in FP32) and the comparison would measure that drift, not the kernels.
/// Judged: the worst step's parameter change, then the momentum buffers after the fifth step. The learning rate is
/// a tenth of the paper's: at 0.01 five steps on one random batch of AlexNet blow the loss up (4.7 to 50 at step 3).
/// </summary>
internal sealed record CpuReference(
    int Batch, float[] Input, int[] Labels, float[] InitialParameters, float[] Logits, float Loss, float[] Gradients,
    float[][] ParametersBeforeStep, float[][] StepDeltas, float[] StepLosses, float[] Velocity)
{
    public const int Steps = 5;
    public const ulong DropoutSeed = 42;
    public static readonly SgdOptions Sgd = new(LearningRate: 0.001f, Momentum: 0.9f, WeightDecay: 5e-4f);
    public static ulong StepSeed(int step) => 100 + (ulong)step;

    public static CpuReference Compute(CheckedNetwork net, int batch, float[] input, int[] labels)
    {
        CudaLaunchPlan plan = net.Plan;
        INetwork cpu = net.Create(batch);
        Initializer.Initialize(net.Model, cpu.Parameters, net.Init, seed: 2012);
        float[] initial = (float[])cpu.Parameters.Clone();

        var logits = new float[batch * plan.ClassCount];
        cpu.Forward(input, batch, logits);
        float loss = cpu.ForwardBackward(input, labels, batch, DropoutSeed);
        float[] gradients = (float[])cpu.Gradients.Clone();

        var sgd = new Sgd((int)plan.ParameterCount, Sgd);
        var before = new float[Steps][];
        var deltas = new float[Steps][];
        var losses = new float[Steps];
        for (int step = 0; step < Steps; step++)
        {
            before[step] = (float[])cpu.Parameters.Clone();
            losses[step] = cpu.ForwardBackward(input, labels, batch, StepSeed(step));
            sgd.Step(cpu.Parameters, cpu.Gradients);
            deltas[step] = new float[plan.ParameterCount];
            for (int i = 0; i < deltas[step].Length; i++) deltas[step][i] = cpu.Parameters[i] - before[step][i];
        }
        return new CpuReference(batch, input, labels, initial, logits, loss, gradients, before, deltas, losses, sgd.Velocity.ToArray());
    }
}
