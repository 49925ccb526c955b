using System.CommandLine;
using AlexNetCompiler.Cuda;

namespace FashionMnist.Commands;

/// <summary>
/// The command line of alexnet-fashion and its one error handler. Commands throw; this maps what a user can cause
/// (a bad file, option or folder, a missing GPU) to one line on stderr and exit code <see cref="ExitCodes.Failed"/>,
/// and anything else to one line that says it is unexpected. <c>--verbose</c> adds the stack trace.
/// </summary>
public static class Cli
{
    public const string VerboseName = "--verbose";

    /// <summary>Runs a command line as the program does, writing to the given writers (the console when null).</summary>
    public static int Run(string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        var verbose = new Option<bool>(VerboseName) { Description = "On an error, also print the stack trace.", Recursive = true };
        RootCommand root = CreateRoot(verbose);
        // No command (or only --verbose) runs train with its defaults: the README's main command.
        if (args.All(a => a == VerboseName)) args = ["train", .. args];
        ParseResult parse = root.Parse(args);
        var configuration = new InvocationConfiguration { EnableDefaultExceptionHandler = false };
        if (output is not null) configuration.Output = output;
        if (error is not null) configuration.Error = error;
        if (parse.Errors.Count > 0 && !args.Any(a => a is "--help" or "-h" or "-?"))
        {
            // An unknown option or a value of the wrong type: one line too, pointing at the command's help.
            string command = string.Join(" ", parse.CommandResult.Command.Name == root.Name ? [] : new[] { parse.CommandResult.Command.Name });
            string problems = string.Join(" ", parse.Errors.Select(e => Readable(OneLine(e.Message)).TrimEnd('.') + "."));
            configuration.Error.WriteLine($"error: {problems} (see 'alexnet-fashion {(command.Length > 0 ? command + " " : "")}--help')");
            return ExitCodes.Failed;
        }
        try
        {
            return parse.Invoke(configuration);
        }
        catch (Exception e)
        {
            Report(e, parse.GetValue(verbose), configuration.Error);
            return ExitCodes.Failed;
        }
    }

    private static RootCommand CreateRoot(Option<bool> verbose) => new(
        "Train, evaluate and use FashionNet, an AlexNet-style network for 28x28 images, the canonical 2012 AlexNet (--network alexnet) " +
        "or CifarNet for 32x32 colour images (--network cifarnet), all generated at compile time from their layer attributes.")
    {
        verbose,
        TrainCommand.Create(),
        EvalCommand.Create(),
        PredictCommand.Create(),
        SummaryCommand.Create(),
        ExportCommand.Create(),
        MakeSubsetCommand.Create(),
    };

    /// <summary>Writes the one-line report of a failure (and its stack trace when verbose).</summary>
    public static void Report(Exception failure, bool verbose, TextWriter error)
    {
        Exception e = Unwrap(failure);
        string hint = verbose ? "" : $"; run again with {VerboseName} for the stack trace";
        error.WriteLine(IsExpected(e)
            ? $"error: {MessageOf(e)}"
            : $"error: unexpected {e.GetType().Name}: {MessageOf(e)} (a bug in alexnet-fashion{hint})");
        if (verbose) error.WriteLine(failure);
    }

    /// <summary>
    /// Failures that a file, an option, a folder or the machine can cause; their messages name what to fix. An
    /// argument error counts only when it is one of ours (no parameter name: the option checks) or a limit the
    /// runtime checks for a size the user chose; any other (a slice out of range, a null argument) is a bug.
    /// </summary>
    public static bool IsExpected(Exception e) => e switch
    {
        ArgumentOutOfRangeException { ParamName: "maxBatch" or "threads" } => true,
        ArgumentException { ParamName: null } and not ArgumentNullException => true,
        ArgumentException => false,
        _ => e is IOException or UnauthorizedAccessException or InvalidDataException or FormatException or NotSupportedException
            or CudaException or CudaUnavailableException or OutOfMemoryException or AlexNetCompiler.Distributed.CommunicatorTimeoutException,
    };

    private static Exception Unwrap(Exception e) =>
        e is AggregateException { InnerExceptions.Count: 1 } aggregate ? Unwrap(aggregate.InnerExceptions[0])
        : e is System.Reflection.TargetInvocationException { InnerException: { } inner } ? Unwrap(inner)
        : e;

    /// <summary>The message on one line, without the " (Parameter 'x')" and "Actual value was" lines .NET appends to argument errors.</summary>
    private static string MessageOf(Exception e)
    {
        string message = e.Message;
        if (e is ArgumentException { ParamName: { } name })
        {
            int cut = message.IndexOf($" (Parameter '{name}')", StringComparison.Ordinal);
            if (cut >= 0) message = message[..cut];
        }
        // The runtime's own text says nothing useful; a message of ours (naming the image, say) is kept.
        if (e is OutOfMemoryException && message == new OutOfMemoryException().Message)
            message = "out of memory: try a smaller --batch-size, or a machine with more memory.";
        return OneLine(message);
    }

    // "as expected type 'System.Nullable`1[System.Int32]'" says little to a user: name the kind of value instead.
    private static string Readable(string message) => System.Text.RegularExpressions.Regex.Replace(message,
        @"as expected type '(?:System\.Nullable`1\[)?System\.(\w+)\]?'", m => m.Groups[1].Value switch
        {
            "Int32" or "Int64" => "as a whole number",
            "UInt64" => "as a non-negative whole number",
            "Single" or "Double" => "as a number",
            "Boolean" => "as true or false",
            _ => m.Value,
        });

    private static string OneLine(string message) =>
        string.Join(" ", message.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
}

/// <summary>The exit codes of alexnet-fashion (docs/main-job.md, "Exit codes").</summary>
public static class ExitCodes
{
    public const int Success = 0;
    /// <summary>A bad option, file, folder or device, or an unexpected failure; the message says which.</summary>
    public const int Failed = 1;
    /// <summary>Training diverged (a non-finite loss); the last good checkpoint is kept.</summary>
    public const int Diverged = 2;
    /// <summary>Interrupted by Ctrl+C or SIGTERM after saving the state (128 + SIGINT, the shell's convention).</summary>
    public const int Interrupted = 130;
}
