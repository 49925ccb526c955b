using System.CommandLine;
using System.Globalization;
using AlexNetCompiler;
using FashionMnist.App;
using Spectre.Console;

namespace FashionMnist.Commands;

internal static class PredictCommand
{
    public static Command Create()
    {
        var files = new Argument<string[]>("images") { Description = "PNG or JPEG files of any size.", Arity = ArgumentArity.OneOrMore };
        var checkpoint = Shared.CheckpointOption();
        var invert = new Option<InvertMode>("--invert") { Description = "Grey networks: invert grey levels: auto (when the border is light, since Fashion-MNIST is light-on-black), yes or no. Colour networks read photos as they are.", DefaultValueFactory = _ => InvertMode.Auto };
        var command = new Command("predict", "Classify image files: the class and the top-3 probabilities.") { files, checkpoint, invert };
        command.SetAction(parse =>
        {
            string[] paths = parse.GetValue(files)!;
            Shared.LoadedModel model = Shared.LoadModel(parse.GetValue(checkpoint)!, 1);
            NetworkDescriptor d = model.Choice.Model;
            IReadOnlyList<string> classNames = model.ClassNames;
            var table = new Table().Border(TableBorder.Rounded);
            table.AddColumn("image");
            table.AddColumn("class");
            table.AddColumn("top 3");
            int classes = classNames.Count;
            var logits = new float[d.ClassCount];
            var probabilities = new double[classes];
            foreach (string path in paths)
            {
                (float[] pixels, bool inverted) = d.InputChannels == 3
                    ? (ImageInput.LoadColour(path, d.InputHeight, model.ImageSide), false)
                    : ImageInput.LoadForNetwork(path, d.InputHeight, d.InputWidth, parse.GetValue(invert));
                model.Normalization.Apply(pixels, d.InputHeight, d.InputWidth);
                model.Network.Forward(pixels, 1, logits);
                // The softmax of the data's classes' logits: outputs beyond them belong to no class.
                Evaluator.Softmax(logits.AsSpan(0, classes), probabilities);
                int[] order = Enumerable.Range(0, classes).OrderByDescending(c => probabilities[c]).Take(3).ToArray();
                string top3 = string.Join(", ", order.Select(c => string.Create(CultureInfo.InvariantCulture, $"{classNames[c]} {100 * probabilities[c]:F1}%")));
                table.AddRow(Markup.Escape(path + (inverted ? " (inverted)" : "")), $"[bold]{Markup.Escape(classNames[order[0]])}[/]", Markup.Escape(top3));
            }
            AnsiConsole.Write(table);
            return ExitCodes.Success;
        });
        return command;
    }
}
