using System.CommandLine;
using AlexNetCompiler.Cpu;
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
        command.SetAction(parse =>
        {
            NetworkChoice choice = NetworkChoice.FromOption(parse.GetValue(network)!);
            int batchSize = parse.GetValue(batch), threadCount = parse.GetValue(threads);
            if (batchSize < 1) throw new ArgumentException($"--batch-size {batchSize}: must be at least 1.");
            if (threadCount < 1 || threadCount > CpuContext.MaxThreads) throw new ArgumentException($"--threads {threadCount}: must be in [1, {CpuContext.MaxThreads}].");
            parse.InvocationConfiguration.Output.Write(choice.Model.ToSummary(batchSize, threadCount));
            return ExitCodes.Success;
        });
        return command;
    }
}
