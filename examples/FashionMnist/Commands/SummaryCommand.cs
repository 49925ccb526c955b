using System.CommandLine;
using FashionMnist.App;

namespace FashionMnist.Commands;

internal static class SummaryCommand
{
    public static Command Create()
    {
        var batch = Shared.BatchOption(128);
        var threads = new Option<int>("--threads") { Description = "Threads for the memory plan's workspace.", DefaultValueFactory = _ => Environment.ProcessorCount };
        var network = Shared.NetworkOption();
        var command = new Command("summary", "The generated layer table, parameter count and memory plan of a network (default FashionNet).") { batch, threads, network };
        command.SetAction(parse => Shared.Guard(() =>
        {
            NetworkChoice choice = NetworkChoice.FromOption(parse.GetValue(network)!);
            parse.InvocationConfiguration.Output.Write(choice.Model.ToSummary(parse.GetValue(batch), parse.GetValue(threads)));
            return 0;
        }));
        return command;
    }
}
