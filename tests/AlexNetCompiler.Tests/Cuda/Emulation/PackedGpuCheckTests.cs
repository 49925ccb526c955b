using System.Text.Json;
using AlexNetCompiler.Cuda;
using SkiaSharp;
using AlexNetCompiler.Tests.App;
using AlexNetCompiler.Tests.Data;
using Xunit.Abstractions;

namespace AlexNetCompiler.Tests.Cuda.Emulation;

/// <summary>
/// The packed GPU check, end to end, with the CUDA emulator standing in for the GPU: `eng/gpu-check.sh pack` builds
/// the folder that travels to the GPU machine (NativeAOT programs, NVRTC 11.8, the prebuilt sm_90 kernel cache), then
/// `eng/gpu-check.sh run` runs from it as it will there: the packed binaries themselves, the carried NVRTC, the
/// carried cache (the emulator poses as compute capability 9.0, so a key that differs between pack and run is a
/// cache miss here too), PyTorch absent (its part fails and the others still run), the fake NCCL standing in for the
/// machine's libnccl.so.2 (the data-parallel part, one rank), and the report's results.json.
/// A packaging slip fails here, not on the GPU. Small sizes keep the emulated parts to minutes.
/// </summary>
public sealed class PackedGpuCheckTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [SkippableFact]
    public void ThePackRunsFromItsOwnFilesAndReportsEveryFigure()
    {
        CudaEmulator.RequireTools();
        string repo = CudaEmulator.RepoRoot;
        string pack = _folder.File("pack"), results = _folder.File("out");
        var (packCode, packText) = CudaEmulator.Run("bash", ["eng/gpu-check.sh", "pack", pack], null, TimeSpan.FromMinutes(20), repo);
        output.WriteLine(packText);
        Assert.True(packCode == 0, "pack failed:\n" + packText);
        Assert.Contains("bash eng/gpu-check.sh run", packText, StringComparison.Ordinal);
        Assert.Matches(@"time limit of \d+ s", packText);
        long bytes = Directory.EnumerateFiles(pack, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        Assert.True(bytes <= 48L << 20, $"the pack holds {bytes >> 20} MiB; at most 48 MiB may travel");

        // The main job trains with every tile (it tunes), the check with one: the library holds all four.
        string library = CudaEmulator.BuildNetworkLibrary("FashionNet", FashionMnist.FashionNet.CudaSource, tf32: false, gemmTiles: CudaGemmTile.All);
        string data = _folder.File("data");
        Directory.CreateDirectory(data);
        TinyData.WriteFolder(TinyData.Slice(2, 1), data); // 20 training images, 10 test images
        var environment = new Dictionary<string, string>
        {
            ["OUT"] = results,
            ["TMPDIR"] = _folder.Path,
            ["ALEXNET_CUDA_PATH"] = library,
            ["ALEXNET_EMULATOR_COMPUTE_CAPABILITY"] = "9.0",
            // AlexNet on the emulator would take hours: the check runs FashionNet, the main job trains FashionNet.
            ["GPU_CHECK_PARTS"] = "unpack,export,torch,check,train-fashionnet,train-distributed-nccl,train-fashionnet-cpu",
            // There the script finds libnccl.so.2 in python3's nvidia-nccl wheel; here the fake (one rank in the process).
            ["ALEXNET_NCCL_PATH"] = CudaEmulator.BuildFakeNccl(),
            ["GPU_CHECK_ARGS"] = "--nets=fashionnet --modes=fp32 --tiles=64x64 --check-batch=2 --time-batch=4 --steps=1",
            ["GPU_CHECK_TRAIN_ARGS"] = $"--data {data} --epochs 2 --batch-size 10 --test-views 1 --threads 2",
            ["GPU_CHECK_TOTAL_S"] = "2100",
            ["GPU_CHECK_LIMITS"] = "export=300,check=900,train-fashionnet=600,train-distributed-nccl=600,train-fashionnet-cpu=300",
        };
        var (runCode, runText) = CudaEmulator.Run("bash", ["eng/gpu-check.sh", "run", pack], environment, TimeSpan.FromMinutes(40), repo);
        output.WriteLine(runText);
        string log = File.ReadAllText(Path.Combine(results, "gpu-check.log"));
        // Without PyTorch the run as a whole reports a failure, and everything else is still there.
        Assert.True(runCode == 1, $"run exited with {runCode}:\n{runText}\n{log}");

        using JsonDocument document = JsonDocument.Parse(File.ReadAllText(Path.Combine(results, "results.json")));
        JsonElement root = document.RootElement;
        JsonElement parts = root.GetProperty("parts");
        foreach (string part in new[] { "unpack", "export", "check", "train-fashionnet", "train-distributed-nccl", "train-fashionnet-cpu" })
            Assert.True(parts.GetProperty(part).GetProperty("state").GetString() == "ok", $"part {part}: {parts.GetProperty(part)}\n{log}");
        Assert.Equal("exit 3", parts.GetProperty("torch").GetProperty("state").GetString()); // no torch here
        Assert.Equal("not asked", parts.GetProperty("train-alexnet").GetProperty("state").GetString());

        JsonElement check = root.GetProperty("check");
        Assert.Equal("CUDA emulator (CPU)", check.GetProperty("device").GetProperty("name").GetString());
        Assert.Equal("sm_90", check.GetProperty("device").GetProperty("architecture").GetString());
        Assert.Equal("11.8", check.GetProperty("nvrtc").GetString());
        Assert.Contains("fixed TF32 tolerances", check.GetProperty("tolerances").GetString(), StringComparison.Ordinal);
        JsonElement tile = check.GetProperty("correctness").GetProperty("fashionnet").GetProperty("fp32").GetProperty("64x64");
        Assert.True(tile.GetProperty("pass").GetBoolean(), tile.ToString());
        Assert.True(tile.GetProperty("cache_hit").GetBoolean(), "the prebuilt kernel cache was not hit: pack and run disagree on a key");
        Assert.Equal(FashionMnist.FashionNet.Model.Parameters.Count + 4, tile.GetProperty("tensors").EnumerateObject().Count());
        foreach (JsonProperty tensor in tile.GetProperty("tensors").EnumerateObject())
            Assert.True(tensor.Value.GetProperty("relative").GetDouble() <= tensor.Value.GetProperty("tolerance").GetDouble(), $"{tensor.Name}: {tensor.Value}");
        JsonElement timing = check.GetProperty("timing").GetProperty("fashionnet").GetProperty("fp32");
        foreach (string figure in new[] { "train_ms", "train_images_per_s", "train_tflops", "train_peak_fraction", "forward_ms", "forward_images_per_s", "forward_tflops", "forward_peak_fraction", "peak_tflops" })
            Assert.True(timing.GetProperty(figure).GetDouble() > 0, $"timing figure {figure}: {timing}");
        Assert.True(check.GetProperty("correctness_pass").GetBoolean());

        // PyTorch's part failed on its own, and said why.
        Assert.Contains("torch", log, StringComparison.Ordinal);
        JsonElement comparison = root.GetProperty("comparison").GetProperty("fashionnet").GetProperty("fp32").GetProperty("train");
        Assert.True(comparison.GetProperty("ours_images_per_s").GetDouble() > 0);
        Assert.Equal(JsonValueKind.Null, comparison.GetProperty("ratio").ValueKind);

        // The main job trained on the "GPU" with the carried kernels, and on the CPU, 2 epochs each.
        JsonElement gpuTraining = root.GetProperty("train").GetProperty("fashionnet");
        Assert.Contains("CUDA emulator (CPU)", gpuTraining.GetProperty("device").GetString(), StringComparison.Ordinal);
        Assert.Contains("kernels from the cache", gpuTraining.GetProperty("device").GetString(), StringComparison.Ordinal);
        foreach (string run in new[] { "fashionnet", "fashionnet_cpu" })
        {
            JsonElement training = root.GetProperty("train").GetProperty(run);
            Assert.Equal("completed", training.GetProperty("status").GetString());
            Assert.Equal(2, training.GetProperty("epochs").GetArrayLength());
            Assert.InRange(training.GetProperty("test_accuracy").GetDouble(), 0, 1);
            Assert.True(training.GetProperty("images_per_second").GetDouble() > 0);
        }

        // The data-parallel run over (fake) NCCL, one rank, matched the plain GPU run of the same command.
        JsonElement nccl = root.GetProperty("train").GetProperty("distributed_nccl");
        Assert.Equal("completed", nccl.GetProperty("status").GetString());
        Assert.Contains("data-parallel: NCCL 2.99.0, rank 0 of 1 on CUDA emulator (CPU)", nccl.GetProperty("device").GetString(), StringComparison.Ordinal);
        JsonElement distributed = root.GetProperty("distributed_nccl");
        Assert.True(distributed.GetProperty("pass").GetBoolean(), distributed.ToString());
        Assert.Equal(2, distributed.GetProperty("epochs").GetArrayLength());
        Assert.True(distributed.GetProperty("max_abs_parameter_difference").GetDouble() <= 1e-3 * distributed.GetProperty("largest_parameter").GetDouble(), distributed.ToString());
        Assert.Contains("NCCL: " + environment["ALEXNET_NCCL_PATH"], log, StringComparison.Ordinal);

        // The summary: what comes back in the output's last 12,000 characters.
        int summaryStart = runText.IndexOf("GPU check ", StringComparison.Ordinal);
        Assert.True(summaryStart >= 0, runText);
        Assert.True(runText.Length - summaryStart < 10_000, $"the summary has {runText.Length - summaryStart} characters");
        Assert.Contains("Correctness against the CPU backend: 1 of 1", runText, StringComparison.Ordinal);

        // The pack holds its large files as .xz; the script's own unpacking gives the programs as they run there.
        string unpacked = _folder.File("unpacked");
        var (unpackCode, unpackText) = CudaEmulator.Run("bash", ["eng/gpu-check.sh", "_unpack", pack, unpacked], null, TimeSpan.FromMinutes(10), repo);
        Assert.True(unpackCode == 0, "unpack failed:\n" + unpackText);
        AssertNativeMainJobEvaluatesAndPredicts(Path.Combine(unpacked, "bin", "alexnet-fashion"), data);
    }

    /// <summary>
    /// The packed main job is the NativeAOT executable of alexnet-fashion: besides training (above), it evaluates on
    /// the embedded test set and classifies an image, with no .NET runtime behind it.
    /// </summary>
    private void AssertNativeMainJobEvaluatesAndPredicts(string program, string data)
    {
        Assert.True(File.Exists(program), $"{program} is missing from the pack");
        string run = _folder.File("native-run");
        var (trainCode, trainText) = CudaEmulator.Run(program,
            ["train", "--device", "cpu", "--data", data, "--epochs", "1", "--batch-size", "10", "--test-views", "1", "--threads", "2", "-o", run],
            null, CliProcess.HangGuard);
        output.WriteLine(trainText);
        Assert.True(trainCode == 0, "the NativeAOT train failed:\n" + trainText);
        string checkpoint = Path.Combine(run, "best.safetensors");

        // No --data: the test set embedded in the executable (1,000 images).
        var (evalCode, evalText) = CudaEmulator.Run(program, ["eval", "--checkpoint", checkpoint], null, CliProcess.HangGuard);
        output.WriteLine(evalText);
        Assert.True(evalCode == 0, "the NativeAOT eval failed:\n" + evalText);
        Assert.Contains("/1000)", evalText, StringComparison.Ordinal);

        string image = _folder.File("shirt.png");
        AlexNetCompiler.Tests.Data.ImageFiles.WriteSolid(image, 64, 48, SKColors.Gray);
        var (predictCode, predictText) = CudaEmulator.Run(program, ["predict", image, "--checkpoint", checkpoint], null, CliProcess.HangGuard);
        output.WriteLine(predictText);
        Assert.True(predictCode == 0, "the NativeAOT predict failed:\n" + predictText);
        Assert.Contains("shirt.png", predictText, StringComparison.Ordinal);
    }
}
