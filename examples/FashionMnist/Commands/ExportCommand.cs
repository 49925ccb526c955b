using System.CommandLine;
using AlexNetCompiler;
using AlexNetCompiler.Onnx;
using Spectre.Console;

namespace FashionMnist.Commands;

internal static class ExportCommand
{
    public static Command Create()
    {
        var checkpoint = Shared.CheckpointOption();
        var onnx = new Option<string>("--onnx")
        {
            Description = $"Write the network as an ONNX model (opset {OnnxExporter.Opset}) to this path: input 'input' [batch, C, H, W] of normalised " +
                          "pixels, output 'logits' [batch, classes].",
            HelpName = "path",
            Required = true,
        };
        var softmax = new Option<bool>("--softmax") { Description = "End the model with a softmax: output 'probabilities' instead of 'logits'." };
        var command = new Command("export", "Export a checkpoint's network to another format (ONNX).") { checkpoint, onnx, softmax };
        command.SetAction(parse =>
        {
            string path = parse.GetValue(onnx)!;
            Shared.LoadedModel model = Shared.LoadModel(parse.GetValue(checkpoint)!, 1);
            // The model takes normalised input: a consumer needs the normalisation and the class names to use it.
            var metadata = new Dictionary<string, string>
            {
                ["normalization_mean"] = model.Normalization.MeanText,
                ["normalization_std"] = model.Normalization.StdText,
                ["class_names"] = string.Join("|", model.ClassNames),
            };
            model.Network.ExportOnnx(path, parse.GetValue(softmax), metadata);
            NetworkDescriptor d = model.Choice.Model;
            AnsiConsole.MarkupLineInterpolated(
                $"Wrote [bold]{path}[/] ({d.Name}, ONNX opset {OnnxExporter.Opset}, {NetworkDescriptor.FormatBytes(new FileInfo(path).Length)})");
            return ExitCodes.Success;
        });
        return command;
    }
}
