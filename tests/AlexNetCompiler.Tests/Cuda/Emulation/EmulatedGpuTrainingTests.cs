using System.Globalization;
using System.Text.RegularExpressions;
using AlexNetCompiler.Tests.App;
using AlexNetCompiler.Tests.Data;
using FashionMnist.App;
using Xunit.Abstractions;

namespace AlexNetCompiler.Tests.Cuda.Emulation;

/// <summary>
/// The main job's GPU path (<c>alexnet-fashion train --device cuda</c>: DeviceSelector, CudaTrainingEngine,
/// checkpoints and evaluation with parameters synchronised from the device) run as a user runs it, on the CUDA
/// emulator, next to the same command on the CPU.
/// </summary>
public sealed class EmulatedGpuTrainingTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [SkippableFact]
    public void TheMainJobTrainsOnTheEmulatedGpuAsItDoesOnTheCpu()
    {
        CudaEmulator.RequireTools();
        // The main job compiles every GEMM tile and tunes, as on a GPU: the library holds the kernels of all of them.
        string library = CudaEmulator.BuildNetworkLibrary("FashionNet", FashionMnist.FashionNet.CudaSource, tf32: false,
            gemmTiles: AlexNetCompiler.Cuda.CudaGemmTile.All);
        string data = _folder.File("data");
        Directory.CreateDirectory(data);
        TinyData.WriteFolder(TinyData.Slice(4, 2), data); // 40 training images, 20 test images
        string app = Path.Combine(AppContext.BaseDirectory, "alexnet-fashion.dll");
        string[] common = ["train", "--data", data, "--epochs", "2", "--batch-size", "10", "--test-views", "1", "--threads", "2", "--seed", "5"];

        var (cpuCode, cpuText) = CudaEmulator.RunProgram(app, [.. common, "--device", "cpu", "--output", _folder.File("cpu")], library: null, TimeSpan.FromMinutes(20));
        var (gpuCode, gpuText) = CudaEmulator.RunProgram(app, [.. common, "--device", "cuda", "--output", _folder.File("gpu")], library, TimeSpan.FromMinutes(30));
        output.WriteLine(cpuText);
        output.WriteLine(gpuText);
        Assert.Equal(0, cpuCode);
        Assert.Equal(0, gpuCode);
        Assert.Contains("CUDA emulator (CPU)", gpuText, StringComparison.Ordinal);
        // It tuned: every tile was compiled and timed, and each GEMM kernel kept one (FashionNet has 23: three per
        // layer, less the first layer's input gradient). The run's JSON log records the device line.
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(_folder.File("gpu"), MetricsLog.JsonName)));
        string device = json.RootElement.GetProperty("device").GetString()!;
        Match tuned = Regex.Match(device, @"GEMM tiles tuned: (?<choices>.+)$");
        Assert.True(tuned.Success, $"the GPU run does not report tuned GEMM tiles: {device}");
        Assert.Equal(23, Regex.Matches(tuned.Groups["choices"].Value, @"(?<n>\d+) kernels?").Sum(m => int.Parse(m.Groups["n"].Value, CultureInfo.InvariantCulture)));

        // Same seeds, same batches, same dropout masks: the per-epoch figures agree to float32 summation order.
        // Training loss is the mean over each epoch's 4 steps after 1..8 free-running steps, so 1e-3 relative;
        // test accuracy may differ by an image whose two top logits nearly tie, so by at most 1 of 20.
        string[] cpuRows = File.ReadAllLines(Path.Combine(_folder.File("cpu"), MetricsLog.CsvName))[1..];
        string[] gpuRows = File.ReadAllLines(Path.Combine(_folder.File("gpu"), MetricsLog.CsvName))[1..];
        Assert.Equal(2, cpuRows.Length);
        Assert.Equal(2, gpuRows.Length);
        for (int epoch = 0; epoch < 2; epoch++)
        {
            double[] c = Numbers(cpuRows[epoch]), g = Numbers(gpuRows[epoch]);
            // columns: epoch, learning_rate, train_loss, train_accuracy, test_loss, test_accuracy, seconds, images_per_second
            Assert.Equal(c[1], g[1]);
            Assert.True(Math.Abs(g[2] - c[2]) <= 1e-3 * Math.Abs(c[2]), $"epoch {epoch + 1} train loss: cpu {c[2]}, emulated gpu {g[2]}");
            Assert.True(Math.Abs(g[4] - c[4]) <= 1e-3 * Math.Abs(c[4]), $"epoch {epoch + 1} test loss: cpu {c[4]}, emulated gpu {g[4]}");
            Assert.True(Math.Abs(g[5] - c[5]) <= 0.05 + 1e-9, $"epoch {epoch + 1} test accuracy: cpu {c[5]}, emulated gpu {g[5]}");
        }
        foreach (string file in Directory.GetFiles(_folder.File("cpu"), "*.safetensors").Select(f => Path.GetFileName(f)))
            Assert.True(File.Exists(Path.Combine(_folder.File("gpu"), file)), $"the GPU run wrote no {file}");
    }

    private static double[] Numbers(string csvRow) =>
        csvRow.Split(',').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
}
