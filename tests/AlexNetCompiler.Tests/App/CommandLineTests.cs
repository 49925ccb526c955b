using System.Text.Json;
using AlexNetCompiler.Checkpoints;
using AlexNetCompiler.Tests.Data;
using FashionMnist;
using FashionMnist.App;
using FashionMnist.Commands;
using SkiaSharp;

namespace AlexNetCompiler.Tests.App;

/// <summary>The commands as a user runs them, on a tiny data folder, checking what they write.</summary>
public sealed class CommandLineTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public CommandLineTests() => TinyData.WriteFolder(TinyData.Slice(10, 5), DataFolder);

    public void Dispose() => _folder.Dispose();

    private string DataFolder => _folder.Path;
    private string Output => _folder.File("run");

    private int Train(params string[] extra) =>
        Cli.Run(["train", "--data", DataFolder, "--batch-size", "25", "--output", Output, "--device", "cpu", "--threads", "2", .. extra]);

    [Fact]
    public void Train_WritesCheckpointsMetricsLogAndPlots_ThenResumeEvalAndPredictUseThem()
    {
        Assert.Equal(0, Train("--epochs", "2", "--augment", "crop,flip,rotate,jitter"));

        string[] csv = File.ReadAllLines(Path.Combine(Output, MetricsLog.CsvName));
        Assert.Equal("epoch,learning_rate,train_loss,train_accuracy,test_loss,test_accuracy,seconds,images_per_second", csv[0]);
        Assert.Equal(3, csv.Length);
        Assert.All(csv.Skip(1), line => Assert.Equal(8, line.Split(',').Length));

        using (JsonDocument log = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Output, MetricsLog.JsonName))))
        {
            JsonElement root = log.RootElement;
            Assert.Equal("completed", root.GetProperty("status").GetString());
            Assert.Equal(2, root.GetProperty("epochs").GetArrayLength());
            Assert.Equal(10, root.GetProperty("last_evaluation").GetProperty("confusion_matrix").GetArrayLength());
            Assert.Equal("FashionNet", root.GetProperty("network").GetString());
        }

        // Every plot is a PNG that decodes, with the size it was drawn at.
        foreach ((string name, int width, int height) in new[] { (Plots.LossName, 800, 500), (Plots.AccuracyName, 800, 500), (Plots.ConfusionName, 900, 800) })
        {
            byte[] png = File.ReadAllBytes(Path.Combine(Output, name));
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
            using SKBitmap bitmap = SKBitmap.Decode(png);
            Assert.NotNull(bitmap);
            Assert.Equal((width, height), (bitmap.Width, bitmap.Height));
        }
        using (SKBitmap filters = SKBitmap.Decode(Path.Combine(Output, Plots.FiltersName)))
        {
            Assert.NotNull(filters);
            Assert.True(filters.Width >= 400 && filters.Height >= 300);
        }

        // The best checkpoint loads into a fresh network, with the metadata eval and predict need.
        var network = new FashionNet(1);
        IReadOnlyDictionary<string, string> metadata = Checkpoint.Load(Path.Combine(Output, Trainer.BestCheckpointName), FashionNet.Model, network.Parameters);
        Assert.Equal("2", Checkpoint.Load(Path.Combine(Output, Trainer.LastCheckpointName), FashionNet.Model, network.Parameters)["epochs_completed"]);
        Assert.True(metadata.ContainsKey("normalization_mean"));

        // --resume continues the same run to 3 epochs.
        Assert.Equal(0, Train("--epochs", "3", "--augment", "crop,flip,rotate,jitter", "--resume"));
        Assert.Equal(4, File.ReadAllLines(Path.Combine(Output, MetricsLog.CsvName)).Length);

        string checkpoint = Path.Combine(Output, Trainer.BestCheckpointName);
        Assert.Equal(0, Cli.Run(["eval", "--checkpoint", checkpoint, "--data", DataFolder, "--plot", _folder.File("cm.png")]));
        Assert.NotNull(SKBitmap.Decode(_folder.File("cm.png")));

        string image = _folder.File("shirt.png");
        AlexNetCompiler.Tests.Data.ImageFiles.WriteSolid(image, 64, 48, SKColors.Gray);
        Assert.Equal(0, Cli.Run(["predict", image, "--checkpoint", checkpoint]));
    }

    [Theory]
    [InlineData("--augment", "sparkle")]
    [InlineData("--epochs", "0")]
    [InlineData("--lr", "0")]
    [InlineData("--device", "cuda")] // no GPU runner for FashionNet in this program: a clear error, not a crash
    public void BadOptions_FailWithExitCodeOne(string option, string value)
    {
        Assert.Equal(1, Train(option, value));
        Assert.False(File.Exists(Path.Combine(Output, Trainer.LastCheckpointName)));
    }

    [Fact]
    public void MissingCheckpoint_IsAnErrorNotACrash()
    {
        Assert.Equal(1, Cli.Run(["eval", "--checkpoint", _folder.File("none.safetensors"), "--data", DataFolder]));
        Assert.Equal(1, Cli.Run(["predict", _folder.File("x.png"), "--checkpoint", _folder.File("none.safetensors")]));
    }

    [Fact]
    public void Augment_ParsesEveryName()
    {
        var all = TrainCommand.ParseAugmentation("crop, flip,rotate,jitter", 3, 7f);
        Assert.True(all.RandomCrop && all.HorizontalFlip && all.Rotation && all.BrightnessContrast);
        Assert.Equal((3, 7f), (all.CropPadding, all.MaxRotationDegrees));
        Assert.False(TrainCommand.ParseAugmentation("none", 2, 10f).Any);
        Assert.Equal(TrainCommand.ParseAugmentation("paper", 2, 10f), TrainCommand.ParseAugmentation("crop,flip", 2, 10f));
    }
}
