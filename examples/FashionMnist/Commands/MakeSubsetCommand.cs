using System.CommandLine;
using AlexNetCompiler.Data;
using FashionMnist.App;
using Spectre.Console;

namespace FashionMnist.Commands;

internal static class MakeSubsetCommand
{
    public static Command Create()
    {
        var source = new Option<string>("--source") { Description = "Folder of the full Fashion-MNIST IDX files.", DefaultValueFactory = _ => FashionMnistFiles.DebianFolder };
        var output = new Option<string>("--output", "-o") { Description = "Folder to write the four .gz IDX files to.", DefaultValueFactory = _ => "subset" };
        var trainPerClass = new Option<int>("--train-per-class") { Description = "Training images per class.", DefaultValueFactory = _ => 600 };
        var testPerClass = new Option<int>("--test-per-class") { Description = "Test images per class.", DefaultValueFactory = _ => 100 };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the selection.", DefaultValueFactory = _ => 2017UL };
        var command = new Command("make-subset", "Write a class-balanced subset of Fashion-MNIST (how the embedded data was made).")
        {
            source, output, trainPerClass, testPerClass, seed,
        };
        command.SetAction(parse =>
        {
            string folder = parse.GetValue(output)!;
            foreach ((Option<int> option, int count) in new[] { (trainPerClass, parse.GetValue(trainPerClass)), (testPerClass, parse.GetValue(testPerClass)) })
            {
                if (count < 1) throw new ArgumentException($"{option.Name} {count}: must be at least 1.");
            }
            (Dataset train, Dataset test) = SubsetMaker.Make(parse.GetValue(source)!, folder, parse.GetValue(trainPerClass), parse.GetValue(testPerClass), parse.GetValue(seed));
            AnsiConsole.MarkupLineInterpolated($"Wrote {train.Count:N0} training and {test.Count:N0} test images to {folder}.");
            return ExitCodes.Success;
        });
        return command;
    }
}
