// The GPU check (docs/cuda.md, "The GPU check"): the CUDA backend against the CPU backend, then timed.
//   GpuCheck [check] [options]         forward, backward and 5 SGD steps on the GPU against the CPU backend (same
//                                      weights, batch and dropout masks), in FP32 and TF32, per GEMM tile, for the
//                                      canonical AlexNet, the main job's FashionNet and a network of unfused paths;
//                                      then AlexNet and FashionNet timed at batch 128. A text report on stdout and,
//                                      with --results=FILE, every figure as JSON.
//   GpuCheck export --dir=DIR          the check's inputs for eng/pytorch_reference.py (PyTorch's own TF32 error)
//   GpuCheck prebuild --cache=DIR      compiles every module the packed run loads into a kernel cache (no GPU)
using System.Diagnostics;
using System.Globalization;
using AlexNetCompiler.Cuda;
using GpuCheck;

CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;

const string Usage =
    "Usage: GpuCheck [check] [--nets=alexnet,fashionnet,unusual,rectangular,avgpool] [--modes=fp32,tf32] [--tiles=all|64x64,128x128,...] [--check-batch=N]\n" +
    "                [--time-batch=N] [--steps=N] [--no-timing] [--results=FILE] [--torch=FILE] [--deadline-s=N]\n" +
    "       GpuCheck export --dir=DIR [--nets=...] [--check-batch=N]\n" +
    "       GpuCheck prebuild --cache=DIR [--arch=sm_90] [--nets=...] [--modes=...] [--tiles=...] [--no-main-job]";

string command = args.Length > 0 && !args[0].StartsWith("--", StringComparison.Ordinal) ? args[0] : "check";
string[] options = command == "check" && (args.Length == 0 || args[0].StartsWith("--", StringComparison.Ordinal)) ? args : args[1..];
if (command is not ("check" or "export" or "prebuild"))
{
    Console.Error.WriteLine($"Unknown command '{command}'.\n{Usage}");
    return 2;
}

int? checkBatch = null;
int timeBatch = 128, timedSteps = 20;
double? deadlineSeconds = null;
bool timing = true, mainJob = true;
string[] nets = [.. CheckedNetworks.Keys], modes = ["fp32", "tf32"];
IReadOnlyList<CudaGemmTile> tiles = CudaGemmTile.All;
string? resultsPath = null, torchPath = null, directory = null, cacheDirectory = null, architecture = "sm_90";
try
{
    foreach (string arg in options)
    {
        string Value(string prefix) => arg[prefix.Length..];
        int PositiveInt(string prefix) => int.TryParse(Value(prefix), NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0
            ? n : throw new FormatException($"{prefix.TrimEnd('=')}: '{Value(prefix)}' is not a positive integer.");
        if (arg.StartsWith("--check-batch=", StringComparison.Ordinal)) checkBatch = PositiveInt("--check-batch=");
        else if (arg.StartsWith("--time-batch=", StringComparison.Ordinal)) timeBatch = PositiveInt("--time-batch=");
        else if (arg.StartsWith("--steps=", StringComparison.Ordinal)) timedSteps = PositiveInt("--steps=");
        else if (arg.StartsWith("--deadline-s=", StringComparison.Ordinal)) deadlineSeconds = PositiveInt("--deadline-s=");
        else if (arg.StartsWith("--nets=", StringComparison.Ordinal)) nets = Value("--nets=").Split(',');
        else if (arg.StartsWith("--modes=", StringComparison.Ordinal)) modes = Value("--modes=").Split(',');
        else if (arg.StartsWith("--tiles=", StringComparison.Ordinal)) tiles = CudaGemmTile.ParseList(Value("--tiles="));
        else if (arg.StartsWith("--results=", StringComparison.Ordinal)) resultsPath = Value("--results=");
        else if (arg.StartsWith("--torch=", StringComparison.Ordinal)) torchPath = Value("--torch=");
        else if (arg.StartsWith("--dir=", StringComparison.Ordinal)) directory = Value("--dir=");
        else if (arg.StartsWith("--cache=", StringComparison.Ordinal)) cacheDirectory = Value("--cache=");
        else if (arg.StartsWith("--arch=", StringComparison.Ordinal)) architecture = Value("--arch=");
        else if (arg == "--no-timing") timing = false;
        else if (arg == "--no-main-job") mainJob = false;
        else throw new FormatException($"Unknown argument '{arg}'.");
    }
    if (nets.FirstOrDefault(n => !CheckedNetworks.Keys.Contains(n)) is string badNet) throw new FormatException($"--nets: unknown network '{badNet}'.");
    if (modes.FirstOrDefault(m => m is not ("fp32" or "tf32")) is string badMode) throw new FormatException($"--modes: unknown mode '{badMode}'.");
    if (command == "export" && directory is null) throw new FormatException("export needs --dir=DIR.");
    if (command == "prebuild" && cacheDirectory is null) throw new FormatException("prebuild needs --cache=DIR.");
}
catch (FormatException e)
{
    Console.Error.WriteLine($"{e.Message}\n{Usage}");
    return 2;
}
CheckedNetwork[] selected = [.. CheckedNetworks.All.Where(n => nets.Contains(n.Key))];

if (command == "export")
{
    ReferenceExport.Write(directory!, selected, checkBatch);
    return 0;
}
if (command == "prebuild") return Prebuild.Run(cacheDirectory!, architecture!, selected, modes, tiles, mainJob);

var clock = Stopwatch.StartNew();
var results = new CheckResults(resultsPath);
// The prelude every generated source includes is an embedded resource: reading it here checks that it survived
// NativeAOT publishing before any GPU is involved.
Console.WriteLine($"Prelude: {CudaPrelude.HeaderName} version {CudaPrelude.Version}, {CudaPrelude.Source.Length:N0} characters");
results.Root["prelude_version"] = CudaPrelude.Version.ToString(CultureInfo.InvariantCulture);
if (!CudaDevice.TryOpen(0, out CudaDevice? device, out string? reason))
{
    Console.Error.WriteLine("GPU check: " + reason);
    results.Error("device", new CudaUnavailableException(reason!));
    return 3;
}
using (device)
{
    Console.WriteLine($"Device: {device}");
    results.Root["device"] = new System.Text.Json.Nodes.JsonObject
    {
        ["name"] = device!.Name,
        ["architecture"] = device.Architecture,
        ["multiprocessors"] = device.MultiprocessorCount,
        ["clock_khz"] = device.ClockRateKHz,
        ["memory_mib"] = device.TotalMemoryBytes / (1 << 20),
        ["driver_cuda"] = $"{device.DriverVersion / 1000}.{device.DriverVersion % 1000 / 10}",
    };
    // Without NVRTC a cache hit still needs its version for the key: nothing can run, and every part says so.
    if (!Nvrtc.IsAvailable(out string? nvrtcReason))
    {
        results.Error("nvrtc", new CudaUnavailableException("NVRTC is not available: " + nvrtcReason));
        return 1;
    }
    var nvrtcVersion = Nvrtc.Version;
    Console.WriteLine($"NVRTC: {nvrtcVersion.Major}.{nvrtcVersion.Minor}");
    results.Root["nvrtc"] = $"{nvrtcVersion.Major}.{nvrtcVersion.Minor}";
    var cache = new KernelCache(KernelCache.DefaultDirectory);
    results.Root["kernel_cache"] = cache.Directory;
    Tolerances tolerances = Tolerances.FromTorchResults(torchPath, out string toleranceNote);
    Console.WriteLine(toleranceNote);
    results.Root["tolerances"] = toleranceNote;
    results.Save();

    bool allPassed = true;
    // Runs one part on its own: past the deadline it is skipped; an exception is recorded and the next part runs.
    bool Part(string name, Action action)
    {
        if (deadlineSeconds is double limit && clock.Elapsed.TotalSeconds > limit)
        {
            results.Skip(name, $"deadline of {limit:F0} s passed");
            return false;
        }
        try
        {
            action();
            results.Save();
            return true;
        }
        catch (Exception e)
        {
            results.Error(name, e);
            return false;
        }
    }

    foreach (CheckedNetwork net in selected)
    {
        // Every GEMM tile is checked on its own (each compiles to different kernels); timing then lets the runner
        // pick a tile per kernel among them, as a user's runner does.
        int batch = checkBatch ?? net.DefaultCheckBatch;
        CpuReference? reference = null;
        if (!Part($"cpu reference {net.Key}", () => reference = CpuReference.Compute(net, batch))) allPassed = false;
        foreach (string mode in modes)
        {
            bool tf32 = mode == "tf32";
            foreach (CudaGemmTile tile in tiles)
            {
                bool passed = false;
                if (reference is null) results.Skip($"correctness {net.Key} {mode} {tile}", "no CPU reference");
                else Part($"correctness {net.Key} {mode} {tile}", () => passed = Correctness.Check(device, cache, net, reference, tf32, tile, tolerances, results.At("correctness", net.Key, mode, tile.ToString())));
                allPassed &= passed;
            }
            if (timing && net.Timed)
                Part($"timing {net.Key} {mode}", () => Timing.Run(device, cache, net, tf32, tiles, timeBatch, timedSteps, profile: net.Key == "alexnet", results.At("timing", net.Key, mode)));
        }
    }
    results.Root["correctness_pass"] = allPassed;
    results.Root["seconds"] = clock.Elapsed.TotalSeconds;
    results.Save();
    Console.WriteLine($"RESULT correctness={(allPassed ? "pass" : "FAIL")}");
    return allPassed && !results.HasErrors ? 0 : 1;
}
