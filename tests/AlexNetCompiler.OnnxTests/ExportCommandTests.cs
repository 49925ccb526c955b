using System.Runtime.Versioning;
using AlexNetCompiler.Checkpoints;
using AlexNetCompiler.Onnx;
using AlexNetCompiler.Tests.App;
using Microsoft.ML.OnnxRuntime;

namespace AlexNetCompiler.OnnxTests;

/// <summary>`alexnet-fashion export --onnx` as a user runs it: the real process, on a checkpoint like the one train writes.</summary>
[SupportedOSPlatform("linux")]
public sealed class ExportCommandTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private string WriteCheckpoint(INetwork network)
    {
        string path = _folder.File("best.safetensors");
        Checkpoint.Save(path, network.Descriptor, network.Parameters, metadata: new Dictionary<string, string>
        {
            ["normalization_mean"] = "0.25",
            ["normalization_std"] = "0.5",
            ["class_names"] = string.Join("|", Enumerable.Range(0, network.Descriptor.ClassCount).Select(c => $"class {c}")),
        });
        return path;
    }

    [Fact]
    public void Export_writes_a_model_that_OnnxRuntime_loads_and_runs_like_the_checkpoint()
    {
        const int batch = 3;
        INetwork network = OnnxRuntimeRunner.Create("FashionNet", batch);
        string checkpoint = WriteCheckpoint(network);
        string model = _folder.File("fashion.onnx");

        using CliProcess run = CliProcess.Run(["export", "--checkpoint", checkpoint, "--onnx", model]);

        Assert.True(run.ExitCode == 0, run.Describe());
        Assert.Contains("fashion.onnx", run.Stdout);
        float[] input = OnnxRuntimeRunner.RandomInput(network.Descriptor, batch, seed: 4);
        double relativeL2 = OnnxRuntimeRunner.RelativeL2(
            OnnxRuntimeRunner.Run(model, network.Descriptor, input, batch), OnnxRuntimeRunner.Forward(network, input, batch));
        Assert.True(relativeL2 <= OnnxExportTests.Tolerance, $"relative L2 {relativeL2:E2}");
        using var session = new InferenceSession(model);
        Assert.Equal("0.25", session.ModelMetadata.CustomMetadataMap["normalization_mean"]);
        Assert.Equal("class 0|class 1|class 2|class 3|class 4|class 5|class 6|class 7|class 8|class 9",
            session.ModelMetadata.CustomMetadataMap["class_names"]);
    }

    [Fact]
    public void Export_with_softmax_names_its_output_probabilities()
    {
        string checkpoint = WriteCheckpoint(OnnxRuntimeRunner.Create("FashionNet", 1));
        string model = _folder.File("fashion.onnx");

        using CliProcess run = CliProcess.Run(["export", "-c", checkpoint, "--onnx", model, "--softmax"]);

        Assert.True(run.ExitCode == 0, run.Describe());
        using var session = new InferenceSession(model);
        Assert.Equal([OnnxExporter.ProbabilitiesName], session.OutputNames);
    }

    [Theory]
    [InlineData("missing checkpoint")]
    [InlineData("no --onnx")]
    [InlineData("unwritable path")]
    public void Export_errors_are_one_line_on_stderr_and_exit_code_one(string problem)
    {
        string checkpoint = problem == "missing checkpoint" ? _folder.File("none.safetensors") : WriteCheckpoint(OnnxRuntimeRunner.Create("FashionNet", 1));
        string[] arguments = problem switch
        {
            "no --onnx" => ["export", "--checkpoint", checkpoint],
            "unwritable path" => ["export", "--checkpoint", checkpoint, "--onnx", _folder.File("no-such-folder/model.onnx")],
            _ => ["export", "--checkpoint", checkpoint, "--onnx", _folder.File("model.onnx")],
        };

        using CliProcess run = CliProcess.Run(arguments);

        Assert.True(run.ExitCode == 1, run.Describe());
        string error = Assert.Single(run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: ", error);
        Assert.DoesNotContain("unexpected", error);
        Assert.Empty(Directory.GetFiles(_folder.Path, "*.onnx*", SearchOption.AllDirectories));
    }
}
