using System.CommandLine;
using System.Globalization;
using AlexNetCompiler;
using FashionMnist.App;
using Spectre.Console;

namespace FashionMnist.Commands;

internal static class EvalCommand
{
    public static Command Create()
    {
        var checkpoint = Shared.CheckpointOption();
        var data = Shared.DataOption();
        var batch = Shared.BatchOption(256);
        var plot = new Option<string?>("--plot") { Description = "Also write the confusion matrix as a PNG to this path." };
        var views = new Option<int>("--views") { Description = "Views averaged per test image: 1 (the image), 2 (and its reflection) or 10 (the paper's five crops and their reflections).", DefaultValueFactory = _ => 1 };
        var cropPadding = new Option<int?>("--crop-padding")
        {
            Description = $"Padding of the corner crops for --views 10 (use the training value). Default: the network's training default " +
                          $"({string.Join(", ", NetworkChoice.All.Select(c => $"{c.Defaults.CropPadding} for {c.OptionName}"))}).",
        };
        var imageCache = new Option<string?>("--image-cache") { Description = $"Image folders: folder of the decoded-image caches (as in train). Default {ImageFolderOptions.DefaultCacheFolderText}." };
        var command = new Command("eval", "Test accuracy, per-class accuracy and confusion matrix of a checkpoint.") { checkpoint, data, batch, plot, views, cropPadding, imageCache };
        command.SetAction(parse =>
        {
            string path = parse.GetValue(checkpoint)!;
            int batchSize = parse.GetValue(batch);
            if (batchSize < 1) throw new ArgumentException($"--batch-size {batchSize}: must be at least 1.");
            if (parse.GetValue(cropPadding) is < 0 or > TrainSettings.MaxCropPadding)
                throw new ArgumentException($"--crop-padding {parse.GetValue(cropPadding)}: must be in [0, {TrainSettings.MaxCropPadding}].");
            Shared.LoadedModel model = Shared.LoadModel(path, batchSize);
            NetworkDescriptor d = model.Choice.Model;
            using DataLease loaded = Load(parse.GetValue(data), model, parse.GetValue(imageCache), path, parse.GetValue(cropPadding) ?? model.Choice.Defaults.CropPadding);
            AnsiConsole.MarkupLineInterpolated($"Checkpoint [bold]{path}[/] ({d.Name}), data: {loaded.Data.Description}");
            if (!loaded.Data.ClassNames.SequenceEqual(model.ClassNames))
                throw new InvalidDataException($"{path}: trained on the classes {string.Join(", ", model.ClassNames)}; the data has {string.Join(", ", loaded.Data.ClassNames)}.");
            int viewCount = parse.GetValue(views);
            EvaluationResult result = loaded.Data.Evaluate(model.Network.Forward, d.ClassCount, batchSize, model.Normalization, viewCount);
            AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture,
                $"Test accuracy [bold green]{100 * result.Accuracy:F2}%[/] ({result.Correct}/{result.Count}), loss {result.Loss:F4}{(viewCount > 1 ? $", averaged over {viewCount} views per image" : "")}"));
            AnsiConsole.Write(Shared.PerClassTable(result));
            AnsiConsole.Write(Shared.ConfusionTable(result));
            string? plotPath = parse.GetValue(plot);
            if (plotPath is not null)
            {
                Plots.ConfusionMatrix(plotPath, result);
                AnsiConsole.MarkupLineInterpolated($"Wrote {plotPath}");
            }
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>The data to evaluate on, owned until disposed (an image folder's caches).</summary>
    private sealed record DataLease(ITrainingData Data) : IDisposable
    {
        public void Dispose() => (Data as IDisposable)?.Dispose();
    }

    /// <summary>
    /// The test images: a checkpoint of an image-folder run evaluates the held-out images of that folder, prepared as
    /// training stored and split them (its metadata gives the side, the held-out share and the split's seed); other
    /// checkpoints, the test split of <c>--data</c>, its corner views padded by <paramref name="cropPadding"/>.
    /// </summary>
    private static DataLease Load(string? dataOption, Shared.LoadedModel model, string? imageCache, string checkpoint, int cropPadding)
    {
        NetworkDescriptor d = model.Choice.Model;
        bool imageFolder = dataOption is not null && Directory.Exists(dataOption) && DataSources.Detect(dataOption) == DataSources.FolderKind.ImageFolder;
        if (!imageFolder)
        {
            if (model.ImageSide is not null)
                throw new ArgumentException($"{checkpoint} was trained on a folder of images by class: pass that folder with --data.");
            if (imageCache is not null) throw new ArgumentException("--image-cache applies to folders of images by class only.");
            return new DataLease(DataSources.Load(dataOption, d.InputChannels, d.InputHeight, d.InputWidth) with { CropPadding = cropPadding });
        }
        if (model.ImageSide is not { } side)
            throw new ArgumentException($"--data {dataOption}: a folder of images by class, but {checkpoint} was not trained on one (its metadata has no '{ImageFolderData.SideKey}').");
        IReadOnlyDictionary<string, string> m = model.Metadata;
        string Entry(string key) => m.TryGetValue(key, out string? value) ? value
            : throw new InvalidDataException($"{checkpoint}: metadata '{key}' is missing; it says how the run split its images.");
        string validation = Entry(ImageFolderData.ValidationKey);
        ulong seed = 0;
        if (validation != ImageFolderData.ValidationFolderValue && !ulong.TryParse(Entry(ImageFolderData.SplitSeedKey), NumberStyles.None, CultureInfo.InvariantCulture, out seed))
            throw new InvalidDataException($"{checkpoint}: metadata '{ImageFolderData.SplitSeedKey}' is '{m[ImageFolderData.SplitSeedKey]}', not a seed.");
        var data = ImageFolderData.OpenForEvaluation(dataOption!, side, validation, seed, d.InputHeight, imageCache,
            line => AnsiConsole.MarkupLineInterpolated($"[yellow]{line}[/]"));
        try
        {
            // The images the run was tested on, not merely as many: a folder changed since, or another one, is refused.
            if (m.TryGetValue(ImageFolderData.TestSetKey, out string? fingerprint) && fingerprint != data.TestSetFingerprint())
                throw new InvalidDataException($"--data {dataOption}: its held-out images are not the ones {checkpoint} was tested on (images added, removed or changed since).");
            return new DataLease(data);
        }
        catch
        {
            data.Dispose();
            throw;
        }
    }
}
