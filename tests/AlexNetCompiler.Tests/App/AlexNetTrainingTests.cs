using System.CommandLine;
using AlexNetCompiler.Checkpoints;
using AlexNetCompiler.Cpu;
using AlexNetCompiler.Data;
using AlexNetCompiler.Tests.Data;
using FashionMnist;
using FashionMnist.App;
using FashionMnist.Commands;
using SkiaSharp;

namespace AlexNetCompiler.Tests.App;

/// <summary>
/// <c>train --network alexnet</c>: the canonical AlexNet on Fashion-MNIST upscaled to 227x227, through the trainer,
/// the checkpoint and the commands that load it, and the registry that keeps the two networks apart.
/// </summary>
public sealed class AlexNetTrainingTests : IDisposable
{
    private readonly TempFolder _folder = new();
    // Its own threads: tests of other classes run in parallel and CpuContext.Default is for one network at a time.
    private readonly CpuContext _cpu = new(2);

    public void Dispose()
    {
        _cpu.Dispose();
        _folder.Dispose();
    }

    /// <summary>Four training and two test images of the embedded subset, still 28x28.</summary>
    private static LoadedData FourImages()
    {
        LoadedData all = TinyData.Embed;
        Dataset train = all.Train.Select([0, 1, 2, 3], "four (train)");
        Dataset test = all.Test.Select([0, 1], "two (test)");
        return new LoadedData(train, test, "four images", false);
    }

    [Fact]
    public void AlexNet_TrainsOnUpscaledImages_AndItsCheckpointLoadsForEval_ButNotAsFashionNet()
    {
        // Two steps of batch 2 at 227x227 (about 1.4 GFLOP per image forward, three times that per training image)
        // are under a second of arithmetic on two cores; initialising 57 million parameters, one checkpoint (217 MB of
        // parameters and as much momentum, flushed to disk) and loading it again cost more than the steps.
        NetworkChoice alexNet = NetworkChoice.AlexNet;
        NetworkDescriptor d = alexNet.Model;
        LoadedData small = FourImages();
        LoadedData data = DataSources.FitToNetwork(small, d.InputChannels, d.InputHeight, d.InputWidth);
        Assert.Equal((1, 227, 227), (data.Train.Channels, data.Train.Height, data.Train.Width));

        var settings = new TrainSettings
        {
            Epochs = 1, BatchSize = 2, LearningRate = alexNet.Defaults.LearningRate, Seed = 3, WeightDecay = 0f,
            // The defaults' crop (padding 16 at 227) and flip: the augmenter runs on the upscaled images.
            Augmentation = TrainCommand.ParseAugmentation("crop,flip", alexNet.Defaults.CropPadding, 10f),
            OutputFolder = "", // saved once below, not as last and best after the epoch: the checkpoint is the slow part
        };
        using var trainer = new Trainer(alexNet.Create(settings.BatchSize, _cpu), data, settings);
        Dictionary<string, float[]> initial = d.Parameters.Where(p => p.Role == ParameterRole.Weight)
            .ToDictionary(p => p.Name, p => EveryHundredAndFirst(trainer.Network.Parameters.AsSpan(p.Offset, p.Length)));
        trainer.Start();
        Assert.Equal(EpochStatus.Completed, trainer.TrainEpoch());

        EpochRecord epoch = Assert.Single(trainer.History);
        Assert.Equal(2, trainer.Step);
        Assert.True(double.IsFinite(epoch.TrainLoss) && epoch.TrainLoss > 0, $"train loss {epoch.TrainLoss}");
        Assert.True(double.IsFinite(epoch.TestLoss), $"test loss {epoch.TestLoss}");
        // Without weight decay only gradients move parameters: every weight tensor, first convolution to classifier, must have moved.
        foreach (ParameterDescriptor p in d.Parameters.Where(p => p.Role == ParameterRole.Weight))
            Assert.NotEqual(initial[p.Name], EveryHundredAndFirst(trainer.Network.Parameters.AsSpan(p.Offset, p.Length)));

        string checkpoint = _folder.File("alexnet.safetensors");
        trainer.SaveCheckpoint(checkpoint);
        Assert.Equal("AlexNetFashion", SafeTensors.ReadHeader(checkpoint).Metadata[Checkpoint.NetworkKey]);

        // eval and predict build the network the checkpoint's metadata names; eval then loads all 57 million parameters
        // (their tensor names and shapes checked), fits the data to 227x227 and evaluates. Each load reads 217 MB, so
        // predict's own step, the upscaled photo, is tested on its own below.
        Assert.Same(alexNet, NetworkChoice.ForCheckpoint(checkpoint));
        string dataFolder = _folder.File("data");
        Directory.CreateDirectory(dataFolder);
        TinyData.WriteFolder(small, dataFolder);
        Assert.Equal(0, Cli.Run(["eval", "--checkpoint", checkpoint, "--data", dataFolder, "--batch-size", "2"]));

        // The AlexNet checkpoint resumed as FashionNet, and a FashionNet checkpoint resumed as AlexNet: one line naming the file.
        LoadedData fashionData = TinyData.Slice(1, 1);
        using (var fashion = new Trainer(NetworkChoice.FashionNet.Create(4, _cpu), fashionData, new TrainSettings { BatchSize = 4, OutputFolder = "" }))
        {
            var e = Assert.Throws<InvalidDataException>(() => fashion.Resume(checkpoint));
            Assert.StartsWith(checkpoint + ": ", e.Message);
            Assert.Contains("AlexNetFashion (--network alexnet), not of FashionNet (--network fashionnet)", e.Message);
            Assert.DoesNotContain('\n', e.Message);
        }
        string fashionCheckpoint = _folder.File("fashion.safetensors");
        Checkpoint.Save(fashionCheckpoint, FashionNet.Model, new float[FashionNet.ParameterCount]);
        var wrong = Assert.Throws<InvalidDataException>(() => trainer.Resume(fashionCheckpoint));
        Assert.StartsWith(fashionCheckpoint + ": ", wrong.Message);
        Assert.Contains("FashionNet (--network fashionnet), not of AlexNetFashion (--network alexnet)", wrong.Message);
    }

    /// <summary>
    /// Every 101st value: a sample that touches every row of a weight matrix (the smallest, a dense row, has 4,096
    /// values) without copying 57 million parameters.
    /// </summary>
    private static float[] EveryHundredAndFirst(ReadOnlySpan<float> tensor)
    {
        var sample = new float[(tensor.Length + 100) / 101];
        for (int i = 0; i < sample.Length; i++) sample[i] = tensor[i * 101];
        return sample;
    }

    [Fact]
    public void Predict_UpscalesAPhotoFrom28x28_LikeTheTrainingImages()
    {
        string image = _folder.File("shirt.png");
        using (var bitmap = new SKBitmap(40, 60))
        {
            using (var canvas = new SKCanvas(bitmap))
            {
                canvas.Clear(SKColors.White);
                using var paint = new SKPaint { Color = SKColors.Black };
                canvas.DrawRect(new SKRect(10, 15, 30, 45), paint);
            }
            File.WriteAllBytes(image, bitmap.Encode(SKEncodedImageFormat.Png, 100).ToArray());
        }
        (float[] small, bool invertedSmall) = ImageInput.Load(image, 28, 28, InvertMode.Auto);
        (float[] large, bool invertedLarge) = ImageInput.LoadForNetwork(image, 227, 227, InvertMode.Auto);
        var expected = new float[227 * 227];
        ImageConversion.ResizeBilinear(small, 28, 28, expected, 227, 227);
        Assert.True(invertedSmall && invertedLarge);
        Assert.Equal(expected, large);
        Assert.Equal(small, ImageInput.LoadForNetwork(image, 28, 28, InvertMode.Auto).Pixels); // FashionNet's input: unchanged
    }

    [Fact]
    public void CheckpointOfAnUnknownNetwork_IsRefusedNamingTheFile()
    {
        string path = _folder.File("scripted.safetensors");
        Checkpoint.Save(path, ScriptedNetwork.Model, new float[ScriptedNetwork.Model.ParameterCount],
            metadata: new Dictionary<string, string> { ["normalization_mean"] = "0", ["normalization_std"] = "1" });
        var e = Assert.Throws<InvalidDataException>(() => Shared.LoadModel(path, 1));
        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains("'Scripted'", e.Message);
        Assert.Equal(1, Cli.Run(["eval", "--checkpoint", path, "--data", "embedded"]));
    }

    [Fact]
    public void NetworkOption_FillsTheNetworksDefaults_AndExplicitOptionsWin()
    {
        // No --network: exactly the settings train has always had.
        TrainRequest fashion = TrainCommand.Read();
        Assert.Same(NetworkChoice.FashionNet, fashion.Network);
        Assert.Equal((64, 0.02f, 2, Path.Combine("runs", "fashion")),
            (fashion.Settings.BatchSize, fashion.Settings.LearningRate, fashion.Settings.Augmentation.CropPadding, fashion.Settings.OutputFolder));
        Assert.Equal(new TrainSettings { OutputFolder = Path.Combine("runs", "fashion") }, fashion.Settings);

        TrainRequest alexNet = TrainCommand.Read("--network", "alexnet");
        Assert.Same(NetworkChoice.AlexNet, alexNet.Network);
        TrainingDefaults defaults = NetworkChoice.AlexNet.Defaults;
        Assert.Equal((defaults.BatchSize, defaults.LearningRate, defaults.CropPadding, defaults.OutputFolder),
            (alexNet.Settings.BatchSize, alexNet.Settings.LearningRate, alexNet.Settings.Augmentation.CropPadding, alexNet.Settings.OutputFolder));

        TrainRequest given = TrainCommand.Read("--network", "AlexNet", "--batch-size", "8", "--lr", "0.01", "--crop-padding", "3", "--output", "mine");
        Assert.Equal((8, 0.01f, 3, "mine"), (given.Settings.BatchSize, given.Settings.LearningRate, given.Settings.Augmentation.CropPadding, given.Settings.OutputFolder));

        var e = Assert.Throws<ArgumentException>(() => TrainCommand.Read("--network", "vgg"));
        Assert.Contains("fashionnet or alexnet", e.Message);
    }

    [Fact]
    public void Summary_ShowsTheChosenNetwork()
    {
        var output = new StringWriter();
        Assert.Equal(0, Cli.Run(["summary", "--network", "alexnet"], output));
        Assert.StartsWith("AlexNetFashion: input [1, 227, 227], 10 classes", output.ToString());
        Assert.Contains("56,885,962", output.ToString());
        Assert.Equal(1, Cli.Run(["summary", "--network", "resnet"]));
    }

    [Fact]
    public void UpscalingTheFullSetTo227_IsRefusedWithTheMemoryItWouldNeed()
    {
        // 60,000 + 10,000 images of 1x227x227 float32: 206 KB each, 14.4 GB; the training split alone exceeds one array.
        string? reason = DataSources.WhyItWouldNotFit(60000, 10000, 1, 227, 227, availableBytes: 128L << 30);
        Assert.NotNull(reason);
        Assert.Contains("14.4 GB", reason);
        Assert.Contains("206 KB each", reason);
        Assert.Contains("41,675", reason);
        // The embedded subset (1.4 GB) fits a machine with 8 GB; the full set fits at FashionNet's 28x28.
        Assert.Null(DataSources.WhyItWouldNotFit(6000, 1000, 1, 227, 227, availableBytes: 8L << 30));
        Assert.Null(DataSources.WhyItWouldNotFit(60000, 10000, 1, 28, 28, availableBytes: 8L << 30));
        Assert.Contains("more than half", DataSources.WhyItWouldNotFit(6000, 1000, 1, 227, 227, availableBytes: 2L << 30));

        // The conversion refuses before allocating, naming the data: 41,676 one-pixel images would not fit once upscaled.
        const int TooMany = 41676;
        var tiny = new Dataset("many", new float[TooMany], new int[TooMany], 1, 1, 1, FashionMnistFiles.ClassNames);
        var e = Assert.Throws<NotSupportedException>(() => DataSources.FitToNetwork(new LoadedData(tiny, tiny, "many dots", true), 1, 227, 227));
        Assert.StartsWith("many dots: ", e.Message);
        Assert.Contains("--data embedded", e.Message);
        Assert.Contains("make-subset", e.Message);
    }
}
