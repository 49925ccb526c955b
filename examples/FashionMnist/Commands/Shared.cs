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
        Description = "Folder of Fashion-MNIST IDX files (gzip or raw) or CIFAR-10 binary batches; 'embedded' for the built-in subset, " +
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
                      $"2012 AlexNet: the images upscaled to 227x227, {NetworkChoice.AlexNet.Model.ParameterCount:N0} parameters) or cifarnet (32x32 colour, " +
                      $"{NetworkChoice.CifarNet.Model.ParameterCount:N0} parameters). Default: fashionnet (train on a CIFAR-10 folder: cifarnet).",
        DefaultValueFactory = _ => NetworkChoice.Default.OptionName,
    };

    /// <summary>A trained network as its checkpoint names it, with the normalisation and class names stored with it.</summary>
    public sealed record LoadedModel(NetworkChoice Choice, INetwork Network, Normalization Normalization, IReadOnlyList<string> ClassNames);

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
        if (classNames.Count != choice.Model.ClassCount)
            throw new InvalidDataException($"{checkpoint}: {classNames.Count} class names for {choice.Model.ClassCount} outputs.");
        return new LoadedModel(choice, network, normalization, classNames);
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
