using System.CommandLine;
using AlexNetCompiler;
using AlexNetCompiler.Checkpoints;
using AlexNetCompiler.Data;
using FashionMnist.App;
using Spectre.Console;

namespace FashionMnist.Commands;

/// <summary>Options and helpers several commands use.</summary>
internal static class Shared
{
    public static Option<string?> DataOption() => new("--data")
    {
        Description = "Folder of Fashion-MNIST IDX files (gzip or raw), of CIFAR-10 binary batches, or of JPEG/PNG images in one sub-folder per class " +
                      "(optionally split into train/ and val/; docs/images.md); 'embedded' for the built-in subset, " +
                      "'debian' for /usr/share/datasets/fashion-mnist. Default: the Debian set when installed, else the embedded subset.",
    };

    public static Option<string> CheckpointOption() => new("--checkpoint", "-c")
    {
        Description = "Checkpoint to load (.safetensors).",
        DefaultValueFactory = _ => Path.Combine("runs", "fashion", Trainer.BestCheckpointName),
    };

    public static Option<int> BatchOption(int defaultValue) => new("--batch-size", "-b")
    {
        Description = "Images per batch.",
        DefaultValueFactory = _ => defaultValue,
    };

    public static Option<string> NetworkOption() => new("--network")
    {
        Description = $"fashionnet (FashionNet: 28x28 input, {NetworkChoice.FashionNet.Model.ParameterCount:N0} parameters), alexnet (the canonical " +
                      $"2012 AlexNet: the images upscaled to 227x227, {NetworkChoice.AlexNet.Model.ParameterCount:N0} parameters), cifarnet (32x32 colour, " +
                      $"{NetworkChoice.CifarNet.Model.ParameterCount:N0} parameters), canonical (the 2012 AlexNet in colour, 227x227, 1000 outputs, " +
                      $"{NetworkChoice.Canonical.Model.ParameterCount:N0} parameters) or torchvision (torchvision's AlexNet, 224x224, " +
                      $"{NetworkChoice.Torchvision.Model.ParameterCount:N0} parameters). Default: fashionnet (train on a CIFAR-10 folder: cifarnet; " +
                      "on a folder of images by class: canonical).",
        DefaultValueFactory = _ => NetworkChoice.Default.OptionName,
    };

    /// <summary>
    /// A trained network as its checkpoint names it, with the normalisation and class names stored with it, and the
    /// checkpoint's metadata (an image-folder run's stored side and split: <see cref="ImageFolderData"/>).
    /// </summary>
    public sealed record LoadedModel(NetworkChoice Choice, INetwork Network, Normalization Normalization, IReadOnlyList<string> ClassNames,
        IReadOnlyDictionary<string, string> Metadata)
    {
        /// <summary>The side an image-folder run stored its images at (the input is the centre crop of that square), or null.</summary>
        public int? ImageSide => Metadata.TryGetValue(ImageFolderData.SideKey, out string? side) && int.TryParse(side, System.Globalization.CultureInfo.InvariantCulture, out int value)
            ? value : null;
    }

    /// <summary>Loads a checkpoint written by train into the network its metadata names.</summary>
    public static LoadedModel LoadModel(string checkpoint, int maxBatch)
    {
        if (!File.Exists(checkpoint))
            throw new FileNotFoundException($"{checkpoint}: checkpoint not found. Train first (alexnet-fashion train) or pass --checkpoint.", checkpoint);
        NetworkChoice choice = NetworkChoice.ForCheckpoint(checkpoint);
        INetwork network = choice.Create(maxBatch, null);
        IReadOnlyDictionary<string, string> metadata = Checkpoint.Load(checkpoint, choice.Model, network.Parameters);
        Normalization normalization = metadata.TryGetValue("normalization_mean", out string? mean) && metadata.TryGetValue("normalization_std", out string? std)
            ? Normalization.Parse(mean, std)
            : throw new InvalidDataException($"{checkpoint}: metadata 'normalization_mean'/'normalization_std' missing; it was not written by alexnet-fashion train.");
        IReadOnlyList<string> classNames = metadata.TryGetValue("class_names", out string? names) ? names.Split('|') : FashionMnistFiles.ClassNames;
        // Fewer names than outputs: a data set of K classes trained outputs 0..K-1 (an image folder on AlexNet's 1000).
        if (classNames.Count < 2 || classNames.Count > choice.Model.ClassCount)
            throw new InvalidDataException($"{checkpoint}: {classNames.Count} class names for {choice.Model.ClassCount} outputs.");
        if (metadata.TryGetValue(ImageFolderData.SideKey, out string? side) &&
            !(int.TryParse(side, System.Globalization.CultureInfo.InvariantCulture, out int sideValue) && sideValue >= choice.Model.InputHeight && sideValue <= 4096))
            throw new InvalidDataException($"{checkpoint}: metadata '{ImageFolderData.SideKey}' is '{side}', not a side in [{choice.Model.InputHeight}, 4096].");
        return new LoadedModel(choice, network, normalization, classNames, metadata);
    }

    public static Table ConfusionTable(EvaluationResult evaluation)
    {
        // Columns are numbered (row labels carry the names) so that ten classes fit an 80-column terminal.
        var table = new Table().Border(TableBorder.Simple).Title("Confusion matrix (rows: true class, columns: predicted)");
        table.AddColumn(new TableColumn("true \\ predicted").NoWrap());
        for (int p = 0; p < evaluation.ClassNames.Count; p++) table.AddColumn(new TableColumn(p.ToString(System.Globalization.CultureInfo.InvariantCulture)).RightAligned().NoWrap());
        for (int t = 0; t < evaluation.ClassNames.Count; t++)
        {
            var cells = new List<string> { Markup.Escape($"{t} {evaluation.ClassNames[t]}") };
            for (int p = 0; p < evaluation.ClassNames.Count; p++)
            {
                int v = evaluation.Confusion[t, p];
                cells.Add(t == p ? $"[green]{v}[/]" : v == 0 ? "[grey]0[/]" : v.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
            table.AddRow(cells.ToArray());
        }
        return table;
    }

    public static Table PerClassTable(EvaluationResult evaluation)
    {
        var table = new Table().Border(TableBorder.Rounded).Title("Per-class test accuracy");
        table.AddColumn("class");
        table.AddColumn(new TableColumn("accuracy").RightAligned());
        table.AddColumn(new TableColumn("images").RightAligned());
        double[] perClass = evaluation.PerClassAccuracy();
        for (int c = 0; c < perClass.Length; c++)
        {
            int row = 0;
            for (int p = 0; p < perClass.Length; p++) row += evaluation.Confusion[c, p];
            table.AddRow(Markup.Escape(evaluation.ClassNames[c]), double.IsNaN(perClass[c]) ? "-" : $"{100 * perClass[c]:0.0}%", row.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        return table;
    }
}
