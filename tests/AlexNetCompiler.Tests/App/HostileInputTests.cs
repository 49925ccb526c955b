using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using AlexNetCompiler.Checkpoints;
using AlexNetCompiler.Data;
using AlexNetCompiler.Tests.Data;
using FashionMnist;
using FashionMnist.App;
using FashionMnist.Commands;
using SkiaSharp;

namespace AlexNetCompiler.Tests.App;

/// <summary>
/// Absurd options and damaged files through the command line's one error handler: each is exit code 1 and one line
/// "error: ..." naming the option, file or field, never a stack trace, and nothing already saved is touched.
/// </summary>
public sealed class HostileInputTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public HostileInputTests() => TinyData.WriteFolder(TinyData.Slice(5, 2), DataFolder);

    public void Dispose() => _folder.Dispose();

    private string DataFolder => _folder.File("data");
    private string Output => _folder.File("run");

    private static (int ExitCode, string Error) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = Cli.Run(args, output, error);
        return (code, error.ToString());
    }

    /// <summary>Exit code 1 and exactly one line that starts "error:" and holds every fragment.</summary>
    private static void AssertOneLineError((int ExitCode, string Error) result, params string[] fragments)
    {
        Assert.Equal(ExitCodes.Failed, result.ExitCode);
        string[] lines = result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        string line = Assert.Single(lines);
        Assert.StartsWith("error: ", line);
        Assert.DoesNotContain("unexpected", line);
        foreach (string fragment in fragments) Assert.Contains(fragment, line);
    }

    /// <summary>One quick epoch on the tiny data; an option in <paramref name="extra"/> replaces its default here.</summary>
    private string[] Train(params string[] extra)
    {
        var args = new List<string> { "train" };
        foreach ((string option, string value) in new[] { ("--data", DataFolder), ("--batch-size", "25"), ("--epochs", "1"), ("--test-views", "1"), ("--output", Output), ("--device", "cpu"), ("--threads", "2") })
            if (!extra.Contains(option)) args.AddRange([option, value]);
        return [.. args, .. extra];
    }

    public static TheoryData<string[], string> AbsurdOptions() => new()
    {
        { ["--threads", "100000"], "--threads 100000" },
        { ["--threads", "-1"], "--threads -1" },
        { ["--max-rotation", "NaN", "--augment", "rotate"], "--max-rotation NaN" },
        { ["--max-rotation", "720"], "--max-rotation 720" },
        { ["--momentum", "NaN"], "--momentum NaN" },
        { ["--weight-decay", "NaN"], "--weight-decay NaN" },
        { ["--lr", "NaN"], "--lr NaN" },
        { ["--crop-padding", "-3"], "--crop-padding -3" },
        { ["--crop-padding", "100000"], "--crop-padding 100000" },
        { ["--epochs", "0"], "--epochs 0" },
        { ["--test-views", "3"], "--test-views 3" },
        { ["--augment", "mirror"], "'mirror'" },
    };

    /// <summary>A folder holding an earlier run (its files' contents by name), to check that a refused command leaves it alone.</summary>
    private Dictionary<string, string> EarlierRun()
    {
        Directory.CreateDirectory(Output);
        File.WriteAllText(Path.Combine(Output, Trainer.LastCheckpointName), "earlier last");
        File.WriteAllText(Path.Combine(Output, Trainer.BestCheckpointName), "earlier best");
        File.WriteAllText(Path.Combine(Output, MetricsLog.CsvName), "epoch\n1\n");
        return Contents();
    }

    private Dictionary<string, string> Contents() =>
        Directory.GetFiles(Output).ToDictionary(f => Path.GetFileName(f), f => File.ReadAllText(f));

    [Theory]
    [MemberData(nameof(AbsurdOptions))]
    public void AbsurdTrainOption_IsRefusedBeforeAnyFolderIsTouched(string[] option, string named)
    {
        Dictionary<string, string> before = EarlierRun();
        // --force would delete the earlier run: a refused command must not get that far.
        AssertOneLineError(Run(Train([.. option, "--force"])), named);
        Assert.Equal(before, Contents());
    }

    [Theory]
    [InlineData("--data", "no-such-folder", "no-such-folder")]
    [InlineData("--batch-size", "1000000", "largest maxBatch that fits")]
    public void ForcedRunThatCannotStart_LeavesTheEarlierRunInPlace(string option, string value, string named)
    {
        Dictionary<string, string> before = EarlierRun();
        AssertOneLineError(Run(Train("--force", option, value)), named);
        Assert.Equal(before, Contents());
    }

    [Theory]
    [InlineData(new[] { "train", "--epochs", "abc" }, "abc")]
    [InlineData(new[] { "train", "--epoch", "3" }, "--epoch")]
    [InlineData(new[] { "eval", "--views" }, "--views")]
    [InlineData(new[] { "bogus" }, "bogus")]
    public void CommandLineThatDoesNotParse_IsOneLinePointingAtHelp(string[] args, string named) =>
        AssertOneLineError(Run(args), named, "--help");

    [Theory]
    [InlineData(new[] { "summary", "--batch-size", "0" }, "--batch-size 0")]
    [InlineData(new[] { "summary", "--threads", "0" }, "--threads 0")]
    [InlineData(new[] { "make-subset", "--train-per-class", "-1" }, "--train-per-class -1")]
    [InlineData(new[] { "make-subset", "--test-per-class", "0" }, "--test-per-class 0")]
    [InlineData(new[] { "eval", "--batch-size", "0" }, "--batch-size 0")]
    public void AbsurdOptionOfAnotherCommand_IsRefused(string[] args, string named) => AssertOneLineError(Run(args), named);

    [Fact]
    public void BatchTooLargeForAnArray_NamesTheBufferAndTheLargestBatchThatFits()
    {
        AssertOneLineError(Run(Train("--batch-size", "1000000")), "maxBatch 1000000", "largest maxBatch that fits");
    }

    [Fact]
    public void UnexpectedFailure_IsOneLineThatSaysSo_AndVerboseAddsTheStackTrace()
    {
        var quiet = new StringWriter();
        Cli.Report(new NullReferenceException("boom"), verbose: false, quiet);
        string line = Assert.Single(quiet.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("unexpected NullReferenceException: boom", line);
        Assert.Contains("--verbose", line);

        // An argument error from inside the code (a slice out of range) is a bug too, not a user's mistake.
        Assert.False(Cli.IsExpected(new ArgumentOutOfRangeException("start")));
        Assert.True(Cli.IsExpected(new ArgumentException("--lr NaN: must be a positive number.")));
        Assert.True(Cli.IsExpected(new ArgumentOutOfRangeException("maxBatch", 5, "too large")));

        var verbose = new StringWriter();
        try { throw new InvalidDataException("damaged"); }
        catch (InvalidDataException e) { Cli.Report(e, verbose: true, verbose); }
        Assert.StartsWith("error: damaged", verbose.ToString());
        Assert.Contains(" at ", verbose.ToString());
    }

    [Fact]
    public void EmptyTrainingSet_IsRefused_NotTrainedOnNothing()
    {
        LoadedData tiny = TinyData.Slice(5, 2);
        string empty = _folder.File("empty-train");
        TinyData.WriteFolder(tiny with { Train = tiny.Train.Select([], "none") }, empty);
        AssertOneLineError(Run(Train("--data", empty)), empty, "training set holds no images");
        Assert.False(File.Exists(Path.Combine(Output, Trainer.BestCheckpointName)));
    }

    [Fact]
    public void EmptyTestSet_IsRefused_NotReportedAsNaNAccuracy()
    {
        LoadedData tiny = TinyData.Slice(5, 2);
        string empty = _folder.File("empty-test");
        TinyData.WriteFolder(tiny with { Test = tiny.Test.Select([], "none") }, empty);
        AssertOneLineError(Run(Train("--data", empty)), empty, "test set holds no images");
    }

    [Fact]
    public void CheckpointWithNaNWeights_IsRefusedByEvalAndPredict()
    {
        Assert.Equal(0, Run(Train()).ExitCode);
        string best = Path.Combine(Output, Trainer.BestCheckpointName);
        string poisoned = _folder.File("poisoned.safetensors");
        NetworkDescriptor model = NetworkChoice.FashionNet.Model;
        var parameters = new float[model.ParameterCount];
        IReadOnlyDictionary<string, string> metadata = Checkpoint.Load(best, model, parameters);
        parameters[model.Parameters[2].Offset + 7] = float.NaN;
        Checkpoint.Save(poisoned, model, parameters, metadata: metadata);

        AssertOneLineError(Run("eval", "--checkpoint", poisoned, "--data", DataFolder), poisoned, model.Parameters[2].Name, "non-finite");
        string image = _folder.File("any.png");
        using (var bitmap = new SKBitmap(28, 28))
        using (SKData png = bitmap.Encode(SKEncodedImageFormat.Png, 100))
            File.WriteAllBytes(image, png.ToArray());
        AssertOneLineError(Run("predict", image, "--checkpoint", poisoned), poisoned, "non-finite");
    }

    public static TheoryData<string, string> DamagedResumeMetadata() => new()
    {
        { "learning_rate", "NaN" },
        { "learning_rate", "-0.1" },
        { "step", "99999999999999999999999" },
        { "epochs_completed", "2147483648" },
        { "best_epoch", "7" },
        { "best_accuracy", "1.5" },
        { "batch_in_epoch", "-4" },
        { "seed", "-1" },
        { "history", "1,0.02,NaN,0.1,2.3,0.1,1,100" },
    };

    [Theory]
    [MemberData(nameof(DamagedResumeMetadata))]
    public void ResumeMetadataOutOfRange_IsRefusedNamingTheKey_AndTheCheckpointIsKept(string key, string value)
    {
        Assert.Equal(0, Run(Train()).ExitCode);
        string last = Path.Combine(Output, Trainer.LastCheckpointName);
        SetMetadata(last, key, value);
        byte[] damaged = File.ReadAllBytes(last);

        (int code, string error) = Run(Train("--resume", "--epochs", "2"));
        AssertOneLineError((code, error), last, key == "history" ? "history row 1" : $"'{key}'");
        Assert.Equal(damaged, File.ReadAllBytes(last));
    }

    [Fact]
    public void TruncatedImage_IsRefusedByPredict()
    {
        Assert.Equal(0, Run(Train()).ExitCode);
        using var bitmap = new SKBitmap(200, 200);
        for (int y = 0; y < 200; y++)
            for (int x = 0; x < 200; x++) bitmap.SetPixel(x, y, new SKColor((byte)(x * 7), (byte)(y * 13), (byte)(x * y)));
        string image = _folder.File("cut.png");
        using (SKData png = bitmap.Encode(SKEncodedImageFormat.Png, 100))
            File.WriteAllBytes(image, png.ToArray()[..(int)(png.Size / 2)]);
        AssertOneLineError(Run("predict", image, "--checkpoint", Path.Combine(Output, Trainer.BestCheckpointName)), image, "truncated");
    }

    /// <summary>Rewrites one metadata value of a safetensors file in place, keeping the data section as it was.</summary>
    private static void SetMetadata(string path, string key, string value)
    {
        byte[] file = File.ReadAllBytes(path);
        int headerLength = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(file));
        JsonNode header = JsonNode.Parse(Encoding.UTF8.GetString(file, 8, headerLength))!;
        header["__metadata__"]![key] = value;
        byte[] json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padded = (json.Length + 7) / 8 * 8;
        using var stream = new FileStream(path, FileMode.Create);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)padded);
        stream.Write(length);
        stream.Write(json);
        for (int i = json.Length; i < padded; i++) stream.WriteByte((byte)' ');
        stream.Write(file.AsSpan(8 + headerLength));
    }
}
