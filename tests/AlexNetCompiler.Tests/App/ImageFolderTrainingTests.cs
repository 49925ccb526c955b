using AlexNetCompiler.Checkpoints;
using AlexNetCompiler.Cpu;
using AlexNetCompiler.Data;
using AlexNetCompiler.Tests.Data;
using FashionMnist.App;
using FashionMnist.Commands;
using SkiaSharp;

namespace AlexNetCompiler.Tests.App;

/// <summary>
/// The main job on a folder of images by class: the data picks the canonical AlexNet, the images go through the decoded
/// cache and the paper's pipeline, a run resumes exactly, and eval and predict prepare images as training did.
/// </summary>
public sealed class ImageFolderTrainingTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly CpuContext _cpu = new(2);

    public void Dispose()
    {
        _cpu.Dispose();
        _folder.Dispose();
    }

    private string Cache => Path.Combine(_folder.Path, "cache");

    /// <summary>
    /// Classes "blue", "green", "red": <paramref name="perClass"/> photos each (noise around the class's colour, 70x50 to
    /// 90x60, JPEG and PNG), and, when asked, a file in "green" that is not an image.
    /// </summary>
    private string WritePhotos(int perClass, bool withBadFile = false, string name = "photos")
    {
        string root = Path.Combine(_folder.Path, name);
        (string Name, SKColor Colour)[] classes = [("red", new SKColor(200, 40, 40)), ("green", new SKColor(40, 180, 60)), ("blue", new SKColor(30, 60, 210))];
        int seed = 0;
        foreach ((string className, SKColor colour) in classes)
            for (int i = 0; i < perClass; i++)
            {
                var random = new Random(seed++);
                ImageFiles.Write(Path.Combine(root, className, $"{i}.{(i % 2 == 0 ? "jpg" : "png")}"), 70 + 10 * (i % 3), 50 + 5 * (i % 3), (_, _) =>
                    new SKColor((byte)Math.Clamp(colour.Red + random.Next(-30, 31), 0, 255), (byte)Math.Clamp(colour.Green + random.Next(-30, 31), 0, 255),
                        (byte)Math.Clamp(colour.Blue + random.Next(-30, 31), 0, 255)));
            }
        if (withBadFile) File.WriteAllText(Path.Combine(root, "green", "broken.jpg"), "not a JPEG");
        return root;
    }

    [Fact]
    public void ImageFolder_ChoosesTheCanonicalAlexNet_UnlessTheNetworkIsGiven()
    {
        string photos = WritePhotos(2);
        TrainRequest request = TrainCommand.Read("--data", photos);
        Assert.Same(NetworkChoice.Canonical, request.Network);
        Assert.Equal(Path.Combine("runs", "images"), request.Settings.OutputFolder);
        Assert.Null(request.Images); // no image option given: the defaults apply when the folder is opened
        Assert.Same(NetworkChoice.Torchvision, TrainCommand.Read("--data", photos, "--network", "torchvision").Network);
        Assert.Equal(new ImageFolderOptions(300, 0.25, 0f, "c"),
            TrainCommand.Read("--data", photos, "--image-side", "300", "--val-fraction", "0.25", "--lighting", "0", "--image-cache", "c").Images);
        Assert.Equal((3, 227, 227, 1000), (NetworkChoice.Canonical.Model.InputChannels, NetworkChoice.Canonical.Model.InputHeight,
            NetworkChoice.Canonical.Model.InputWidth, NetworkChoice.Canonical.Model.ClassCount));
    }

    [Fact]
    public void Refusals_NameTheOptionOrFolder_WithoutAStackTrace()
    {
        string photos = WritePhotos(2);
        string Fails(params string[] args)
        {
            var error = new StringWriter();
            Assert.Equal(ExitCodes.Failed, Cli.Run(["train", .. args, "--output", Path.Combine(_folder.Path, "run"), "--device", "cpu", "--image-cache", Cache], new StringWriter(), error));
            string text = error.ToString().TrimEnd();
            Assert.StartsWith("error: ", text);
            Assert.DoesNotContain("   at ", text);
            return text;
        }

        Assert.Contains("a folder of colour images by class trains a colour network", Fails("--data", photos, "--network", "fashionnet"));
        Assert.Contains("--augment: rotate and jitter", Fails("--data", photos, "--augment", "crop,rotate"));
        Assert.Contains("--val-fraction 1", Fails("--data", photos, "--val-fraction", "1"));
        Assert.Contains("--image-side 200", Fails("--data", photos, "--image-side", "200"));
        Assert.Contains("apply to folders of images by class only", Fails("--data", "embedded"));

        // More classes than outputs: CifarNet has ten.
        string many = Path.Combine(_folder.Path, "many");
        for (int c = 0; c < 11; c++)
            for (int i = 0; i < 2; i++) ImageFiles.WriteSolid(Path.Combine(many, $"class{c:D2}", $"{i}.png"), 40, 40, SKColors.Gray);
        Assert.Contains("11 classes, more than the 10 outputs of CifarNet", Fails("--data", many, "--network", "cifarnet"));
    }

    [Fact]
    public void TrainOnImageFolder_SkipsTheBadFile_ThenEvalAndPredictUseTheSameViews()
    {
        string photos = WritePhotos(5, withBadFile: true);
        string output = Path.Combine(_folder.Path, "run");

        // A child process: its console output (the skipped file, the final ten-view line) is the user's view of the run.
        using CliProcess train = CliProcess.Run(["train", "--data", photos, "--epochs", "1", "--batch-size", "4", "--val-fraction", "0.4", "--test-views", "10",
            "--image-cache", Cache, "--output", output, "--device", "cpu", "--threads", "2"]);

        Assert.True(train.ExitCode == 0, train.Describe());
        // The console wraps lines at 80 columns when redirected: compare with runs of white space as one space.
        string text = System.Text.RegularExpressions.Regex.Replace(train.Output, @"\s+", " ");
        Assert.Contains(Path.Combine("green", "broken.jpg") + ": skipped: not an image", text);
        Assert.Contains("1 undecodable image(s) skipped", text);
        Assert.Contains("Final test accuracy with 10-view averaging", text);
        string checkpoint = Path.Combine(output, Trainer.LastCheckpointName);
        IReadOnlyDictionary<string, string> metadata = SafeTensors.ReadHeader(checkpoint).Metadata;
        Assert.Equal("AlexNet2012", metadata[Checkpoint.NetworkKey]);
        Assert.Equal("blue|green|red", metadata["class_names"]); // ordinal order of the folder names
        Assert.Equal("256", metadata[ImageFolderData.SideKey]);
        Assert.Equal("0.4", metadata[ImageFolderData.ValidationKey]);
        Assert.Equal("1", metadata[ImageFolderData.SplitSeedKey]);
        // Held out per class: round(0.4 x 5) = 2 of blue and red, round(0.4 x 4 readable) = 2 of green.
        Assert.Contains("9 train / 6 test images", metadata["data"]);

        // eval rebuilds the same split from the metadata and reuses the cache (nothing decoded: no "rebuilding" line).
        using CliProcess eval = CliProcess.Run(["eval", "--checkpoint", checkpoint, "--data", photos, "--image-cache", Cache, "--views", "10"]);
        Assert.True(eval.ExitCode == 0, eval.Describe());
        Assert.Matches(@"Test accuracy [0-9.]+% \([0-6]/6\)", eval.Output);
        Assert.Contains("averaged over 10 views per image", eval.Output);
        Assert.DoesNotContain("rebuilding", eval.Output);

        // predict names one of the folder's three classes (the other 997 outputs belong to none).
        string image = Path.Combine(_folder.Path, "new.jpg");
        ImageFiles.WriteNoise(image, 300, 280, seed: 3);
        using CliProcess predict = CliProcess.Run(["predict", image, "--checkpoint", checkpoint]);
        Assert.True(predict.ExitCode == 0, predict.Describe());
        // The top classes are the data's (the table wraps at 80 columns, so a cell may be split over lines); the first,
        // the largest of three probabilities that add up to one, is at least a third.
        string table = System.Text.RegularExpressions.Regex.Replace(predict.Output, @"[\s│]+", " ");
        var top = System.Text.RegularExpressions.Regex.Matches(table, @"\b(blue|green|red) ([0-9.]+)%")
            .Select(m => double.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.True(top.Count >= 2 && top[0] >= 33.3, table);
    }

    [Theory]
    [InlineData(2)] // interrupted inside the first epoch, resumed mid-epoch
    [InlineData(-1)] // stopped at the epoch boundary
    public void Resume_OnAnImageFolder_ContinuesExactlyAsAnUninterruptedRun(int interruptAfterBatch)
    {
        string photos = WritePhotos(6);
        var options = new ImageFolderOptions(CacheFolder: Cache, ValidationFraction: 0.34);
        TrainSettings Settings(string name) => new()
        {
            Epochs = 2, BatchSize = 4, LearningRate = 0.01f, Seed = 5, StepEpochs = 1,
            Augmentation = AugmentationOptions.Paper, OutputFolder = _folder.File(name),
        };
        // CifarNet (3x32x32) takes image folders too: stored at 36, random 32x32 crops, lighting on. Small enough to train here in seconds.
        ImageFolderData Open() => ImageFolderData.Open(photos, options, 32, splitSeed: 5);

        using ImageFolderData straightData = Open();
        using var straight = new Trainer(NetworkChoice.CifarNet.Create(4, _cpu), straightData, Settings("straight"));
        straight.Start();
        straight.TrainEpoch();
        straight.TrainEpoch();

        string checkpoint;
        using (ImageFolderData firstData = Open())
        using (var first = new Trainer(NetworkChoice.CifarNet.Create(4, _cpu), firstData, Settings("split")))
        {
            first.Start();
            if (interruptAfterBatch > 0)
            {
                using var cancel = new CancellationTokenSource();
                Assert.Equal(EpochStatus.Interrupted, first.TrainEpoch(p => { if (p.Batch == interruptAfterBatch) cancel.Cancel(); }, cancel.Token));
                first.SaveCheckpoint();
            }
            else
            {
                Assert.Equal(EpochStatus.Completed, first.TrainEpoch());
            }
            checkpoint = first.LastCheckpointPath;
        }

        using ImageFolderData resumedData = Open();
        using var resumed = new Trainer(NetworkChoice.CifarNet.Create(4, _cpu), resumedData, Settings("split"));
        resumed.Resume(checkpoint);
        while (resumed.CompletedEpochs < 2) Assert.Equal(EpochStatus.Completed, resumed.TrainEpoch());

        // Same crops, flips, lighting and dropout masks in the same order: the same arithmetic, parameters equal exactly.
        Assert.Equal(3, straight.BatchesPerEpoch); // 12 training images (round(0.34 x 6) = 2 of each class held out) in batches of 4
        Assert.Equal(straight.Step, resumed.Step);
        Assert.Equal(straight.Network.Parameters, resumed.Network.Parameters);
        Assert.Equal(straight.Optimizer.Velocity, resumed.Optimizer.Velocity);
        Assert.Equal(straight.History.Select(r => (r.TrainLoss, r.TestAccuracy)), resumed.History.Select(r => (r.TrainLoss, r.TestAccuracy)));
    }

    [Fact]
    public void ShardedImageLoader_PreparesEachRanksPartOfTheWholeBatch_Exactly()
    {
        string photos = WritePhotos(4);
        using ImageFolderData data = ImageFolderData.Open(photos, new ImageFolderOptions(CacheFolder: Cache), 32, splitSeed: 1);
        var settings = new TrainSettings { BatchSize = 5, Seed = 3, Augmentation = AugmentationOptions.Paper };
        Normalization normalization = data.ComputeNormalization();
        IBatchSource whole = data.CreateTrainLoader(settings, normalization, 0, 1, out _);
        var (first, second) = (data.CreateTrainLoader(settings, normalization, 0, 2, out _), data.CreateTrainLoader(settings, normalization, 1, 2, out _));

        var wholeBatches = whole.Epoch(1).Select(b => (b.ImageSpan.ToArray(), b.Indices[..b.Count])).ToList();
        var firstBatches = first.Epoch(1).Select(b => (b.ImageSpan.ToArray(), b.Indices[..b.Count], b.FirstSample, b.BatchCount)).ToList();
        var secondBatches = second.Epoch(1).Select(b => (b.ImageSpan.ToArray(), b.Indices[..b.Count], b.FirstSample, b.BatchCount)).ToList();

        Assert.Equal(wholeBatches.Count, firstBatches.Count);
        for (int b = 0; b < wholeBatches.Count; b++)
        {
            Assert.Equal(0, firstBatches[b].FirstSample);
            Assert.Equal(firstBatches[b].Item2.Length, secondBatches[b].FirstSample);
            Assert.Equal(wholeBatches[b].Item2.Length, secondBatches[b].BatchCount);
            Assert.Equal(wholeBatches[b].Item2, firstBatches[b].Item2.Concat(secondBatches[b].Item2).ToArray());
            Assert.Equal(wholeBatches[b].Item1, firstBatches[b].Item1.Concat(secondBatches[b].Item1).ToArray());
        }
    }

    [Fact]
    public void Evaluation_OfFewerClassesThanOutputs_PredictsAmongTheDatasClasses()
    {
        // Two classes on a network of four outputs: output 3 (no class) always has the largest logit, and the label's
        // own logit is the larger of the first two. Judged on the data's classes, every prediction is right.
        var images = new Dataset("two", new float[4 * 1 * 2 * 2], [0, 1, 1, 0], 1, 2, 2, ["a", "b"]);
        void Forward(ReadOnlySpan<float> input, int count, Span<float> logits)
        {
            for (int n = 0; n < count; n++)
            {
                int label = images.Labels[n];
                logits.Slice(n * 4, 4).Clear();
                logits[n * 4 + label] = 2;
                logits[n * 4 + 3] = 9;
            }
        }

        EvaluationResult result = Evaluator.Evaluate(Forward, classes: 4, maxBatch: 4, images, new Normalization([0f], [1f]));

        Assert.Equal(1.0, result.Accuracy);
        // softmax over (2, 0): p(label) = e^2 / (e^2 + 1).
        Assert.Equal(-Math.Log(Math.Exp(2) / (Math.Exp(2) + 1)), result.Loss, 12);
        Assert.Throws<ArgumentException>(() => Evaluator.Evaluate(Forward, classes: 1, maxBatch: 4, images, new Normalization([0f], [1f])));
    }
}
