using AlexNetCompiler.Checkpoints;
using AlexNetCompiler.Data;
using AlexNetCompiler.Tests.Data;
using FashionMnist.App;
using FashionMnist.Commands;
using SkiaSharp;

namespace AlexNetCompiler.Tests.App;

/// <summary>CIFAR-10 in colour: the data picks CifarNet, the images keep their three channels, and train and predict run.</summary>
public sealed class CifarNetTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    /// <summary>CIFAR records: record r has label r % 10 and channel c filled with (40 * c + 10 * r) % 256.</summary>
    private string WriteCifar(int records)
    {
        string data = Path.Combine(_folder.Path, "cifar");
        Directory.CreateDirectory(data);
        var bytes = new byte[records * Cifar10.RecordBytes];
        for (int r = 0; r < records; r++)
        {
            bytes[r * Cifar10.RecordBytes] = (byte)(r % 10);
            for (int c = 0; c < 3; c++) bytes.AsSpan(r * Cifar10.RecordBytes + 1 + c * 1024, 1024).Fill((byte)((40 * c + 10 * r) % 256));
        }
        File.WriteAllBytes(Path.Combine(data, "data_batch_1.bin"), bytes);
        File.WriteAllBytes(Path.Combine(data, "test_batch.bin"), bytes);
        return data;
    }

    [Fact]
    public void CifarNet_IsAColourNetworkFor32x32()
    {
        NetworkDescriptor model = NetworkChoice.CifarNet.Model;
        Assert.Equal((3, 32, 32, 10), (model.InputChannels, model.InputHeight, model.InputWidth, model.ClassCount));
        // Counted by hand from the attributes: conv 4,864 + 102,528 + 221,376 + 166,080 + 110,720, dense
        // 2,098,176 + 524,800 + 5,130.
        Assert.Equal(3_233_674, model.ParameterCount);
    }

    [Fact]
    public void CifarFolder_ChoosesCifarNet_UnlessTheNetworkIsGiven()
    {
        string data = WriteCifar(2);
        Assert.Same(NetworkChoice.CifarNet, TrainCommand.Read("--data", data).Network);
        Assert.Equal(Path.Combine("runs", "cifar"), TrainCommand.Read("--data", data).Settings.OutputFolder);
        Assert.Same(NetworkChoice.FashionNet, TrainCommand.Read("--data", data, "--network", "fashionnet").Network);
        Assert.Same(NetworkChoice.FashionNet, TrainCommand.Read("--data", "embedded").Network);
        Assert.Same(NetworkChoice.CifarNet, TrainCommand.Read("--network", "cifarnet").Network);
    }

    [Fact]
    public void CifarFolder_ForCifarNet_KeepsItsColour()
    {
        string data = WriteCifar(3);

        LoadedData loaded = DataSources.Load(data, 3, 32, 32);

        Assert.DoesNotContain("converted", loaded.Description);
        Assert.Equal((3, 32, 32), (loaded.Train.Channels, loaded.Train.Height, loaded.Train.Width));
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 3; c++)
                // The reader multiplies by the rounded 1/255: within 2 roundings (2^-23 relative) of the quotient.
                Assert.All(loaded.Train.Image(r).Slice(c * 1024, 1024).ToArray(), v => Assert.Equal(((40 * c + 10 * r) % 256) / 255.0, v, 2e-7));
    }

    [Fact]
    public void GreyData_ForCifarNet_RepeatsTheGreyPlaneInEveryChannel()
    {
        LoadedData grey = TinyData.Slice(1, 1);
        LoadedData colour = DataSources.FitToNetwork(grey, 3, 32, 32);
        ReadOnlySpan<float> image = colour.Train.Image(0);
        Assert.Equal(image.Slice(0, 1024).ToArray(), image.Slice(1024, 1024).ToArray());
        Assert.Equal(image.Slice(0, 1024).ToArray(), image.Slice(2048, 1024).ToArray());
        Assert.Contains(image.Slice(0, 1024).ToArray(), v => v > 0);
    }

    [Fact]
    public void ImageFolder_IsNotLoadedIntoMemory()
    {
        // Image folders go through the decoded-image cache (ImageFolderTrainingTests); the in-memory loader says so.
        string images = Path.Combine(_folder.Path, "photos");
        ImageFiles.WriteSolid(Path.Combine(images, "a", "1.png"), 8, 8, SKColors.Red);
        ImageFiles.WriteSolid(Path.Combine(images, "b", "1.png"), 8, 8, SKColors.Blue);
        var e = Assert.Throws<NotSupportedException>(() => DataSources.Load(images, 1, 28, 28));
        Assert.StartsWith(images + ": a folder of images by class", e.Message);
    }

    [Fact]
    public void TrainOnCifar_ThenPredictAColourImage()
    {
        string data = WriteCifar(10);
        string output = Path.Combine(_folder.Path, "run");
        Assert.Equal(0, Cli.Run(["train", "--data", data, "--epochs", "1", "--batch-size", "5", "--test-views", "1", "--output", output, "--device", "cpu", "--threads", "2"]));
        string checkpoint = Path.Combine(output, Trainer.LastCheckpointName);
        Assert.Same(NetworkChoice.CifarNet, NetworkChoice.ForCheckpoint(checkpoint));

        string image = Path.Combine(_folder.Path, "photo.jpg");
        ImageFiles.WriteNoise(image, 48, 40, seed: 5);
        var console = new StringWriter();
        Assert.Equal(0, Cli.Run(["predict", image, "--checkpoint", checkpoint], console, console));
    }
}
