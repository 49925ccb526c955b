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
        var command = new Command("eval", "Test accuracy, per-class accuracy and confusion matrix of a checkpoint.") { checkpoint, data, batch, plot, views, cropPadding };
        command.SetAction(parse =>
        {
            string path = parse.GetValue(checkpoint)!;
            int batchSize = parse.GetValue(batch);
            if (batchSize < 1) throw new ArgumentException($"--batch-size {batchSize}: must be at least 1.");
            if (parse.GetValue(cropPadding) is < 0 or > TrainSettings.MaxCropPadding)
                throw new ArgumentException($"--crop-padding {parse.GetValue(cropPadding)}: must be in [0, {TrainSettings.MaxCropPadding}].");
            Shared.LoadedModel model = Shared.LoadModel(path, batchSize);
            NetworkDescriptor d = model.Choice.Model;
            LoadedData loaded = DataSources.Load(parse.GetValue(data), d.InputChannels, d.InputHeight, d.InputWidth);
            AnsiConsole.MarkupLineInterpolated($"Checkpoint [bold]{path}[/] ({d.Name}), data: {loaded.Description}");
            int viewCount = parse.GetValue(views);
            EvaluationResult result = Evaluator.Evaluate(model.Network.Forward, d.ClassCount, batchSize, loaded.Test, model.Normalization, viewCount,
                parse.GetValue(cropPadding) ?? model.Choice.Defaults.CropPadding);
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
}
