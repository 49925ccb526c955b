using System.CommandLine;

namespace FashionMnist.Commands;

internal static class SummaryCommand
{
    public static Command Create()
    {
        var batch = Shared.BatchOption(128);
        var threads = new Option<int>("--threads") { Description = "Threads for the memory plan's workspace.", DefaultValueFactory = _ => Environment.ProcessorCount };
        var command = new Command("summary", "The generated layer table, parameter count and memory plan of FashionNet.") { batch, threads };
        command.SetAction(parse =>
        {
            Console.Write(FashionNet.Model.ToSummary(parse.GetValue(batch), parse.GetValue(threads)));
            return 0;
        });
        return command;
    }
}
