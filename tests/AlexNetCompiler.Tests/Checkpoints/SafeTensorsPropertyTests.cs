using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using AlexNetCompiler.Checkpoints;
using AlexNetCompiler.Training;
using CsCheck;

namespace AlexNetCompiler.Tests.Checkpoints;

/// <summary>
/// Valid checkpoints mutated at random: bytes overwritten, inserted or cut anywhere, and edits inside the JSON header
/// (numbers, strings and tokens replaced or inserted, the header re-framed so the edit reaches the field checks).
/// Loading must either succeed, reading exactly the bytes the header points at, or throw InvalidDataException naming
/// the file; any other exception fails.
/// </summary>
public sealed class SafeTensorsPropertyTests : IDisposable
{
    /// <summary>Small tensors, so that each case writes and reads about a kilobyte.</summary>
    private static readonly NetworkDescriptor Network = TestNetworks.Create("PropertyNet",
        ("features.0.weight", [2, 1, 2, 2], ParameterRole.Weight, 4, 0f),
        ("features.0.bias", [2], ParameterRole.Bias, 4, 0f),
        ("classifier.1.weight", [3, 2], ParameterRole.Weight, 2, 1f),
        ("classifier.1.bias", [3], ParameterRole.Bias, 2, 1f));

    private readonly string _directory = Directory.CreateTempSubdirectory("anc-safetensors-property-").FullName;
    private readonly byte[][] _bases;

    public SafeTensorsPropertyTests()
    {
        var parameters = new float[Network.ParameterCount];
        Initializer.Initialize(Network, parameters, InitScheme.He, seed: 5);
        string weightsOnly = Path.Combine(_directory, "weights.safetensors");
        Checkpoint.Save(weightsOnly, Network, parameters);
        var sgd = new Sgd(parameters.Length, new SgdOptions(0.05f));
        sgd.Step(parameters, parameters);
        string withState = Path.Combine(_directory, "state.safetensors");
        Checkpoint.Save(withState, Network, parameters, sgd, new Dictionary<string, string> { ["epoch"] = "7", ["note"] = "é" });
        _bases = [File.ReadAllBytes(weightsOnly), File.ReadAllBytes(withState)];
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    public abstract record Edit;
    public sealed record OverwriteByte(int At, byte Value) : Edit;
    public sealed record InsertBytes(int At, byte[] Bytes) : Edit
    {
        public override string ToString() => $"InsertBytes {{ At = {At}, Bytes = {Convert.ToHexString(Bytes)} }}";
    }
    public sealed record DeleteBytes(int At, int Count) : Edit;
    public sealed record Truncate(int Length) : Edit;
    /// <summary>Overwrites one of the last 64 bytes: tensor data, as long as the framing is intact.</summary>
    public sealed record OverwriteNearEnd(int Back, byte Value) : Edit;
    public sealed record ReplaceNumber(int Which, string Text) : Edit;
    public sealed record ReplaceString(int Which, string Text) : Edit;

    /// <summary>Header edits are applied to the JSON and the length prefix rewritten; file edits act on the finished bytes.</summary>
    public sealed record Case(int Base, Edit[] HeaderEdits, Edit[] FileEdits)
    {
        public override string ToString() =>
            $"base {Base}; header: [{string.Join(", ", HeaderEdits.Select(e => e.ToString()))}]; file: [{string.Join(", ", FileEdits.Select(e => e.ToString()))}]";
    }

    private static readonly string[] Tokens =
    [
        "\"", "-1", "0", "1e999", "1.5", "99999999999999999999", "2147483648", "9223372036854775807", "-9223372036854775808",
        "\"x\"", "[]", "{}", "null", "true", ",", ":", "\\ud800", "\\udc00", "\\u0000", "é", "[0,0]", "\"__metadata__\":{},",
        "\"features.0.bias\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},",
        "\"z\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,2147483647],\"data_offsets\":[0,0]},",
    ];

    private static readonly string[] Strings =
    [
        "\"F32\"", "\"I32\"", "\"F16\"", "\"F4\"", "\"Q9\"", "\"__metadata__\"", "\"features.0.bias\"", "\"\\ud800\"", "\"\\udfffx\"",
        "3", "[]", "{}", "null", "\"shape\"", "\"data_offsets\"", "\"dtype\"", "\"\"",
    ];

    private static readonly string[] Numbers =
    [
        "0", "1", "-1", "4", "8", "1.5", "-0", "1e3", "2147483647", "2147483648", "4294967296", "9223372036854775807",
        "9223372036854775808", "-9223372036854775808", "\"8\"", "null", "[8]", "{}",
    ];

    private static readonly Gen<int> Position = Gen.Int[0, 1 << 16];

    private static readonly Gen<Edit> HeaderEdit = Gen.Frequency(
        (3, (IGen<Edit>)Gen.Select(Position, Gen.Int[0, Numbers.Length - 1], (w, n) => (Edit)new ReplaceNumber(w, Numbers[n]))),
        (2, Gen.Select(Position, Gen.Int[0, Strings.Length - 1], (w, s) => (Edit)new ReplaceString(w, Strings[s]))),
        (2, Gen.Select(Position, Gen.Int[0, Tokens.Length - 1], (at, t) => (Edit)new InsertBytes(at, Encoding.UTF8.GetBytes(Tokens[t])))),
        (1, Gen.Select(Position, Gen.OneOf<byte>(0xff, 0xc3, 0xed, 0x80, 0x00, 0x22, 0x5c), (at, b) => (Edit)new InsertBytes(at, [b]))),
        (2, Gen.Select(Position, Gen.Byte, (at, b) => (Edit)new OverwriteByte(at, b))),
        (1, Gen.Select(Position, Gen.Int[1, 12], (at, n) => (Edit)new DeleteBytes(at, n))));

    private static readonly Gen<Edit> FileEdit = Gen.Frequency(
        (3, (IGen<Edit>)Gen.Select(Position, Gen.Byte, (at, b) => (Edit)new OverwriteByte(at, b))),
        (3, Gen.Select(Gen.Int[0, 63], Gen.Byte, (back, b) => (Edit)new OverwriteNearEnd(back, b))),
        (2, Gen.Select(Position, Gen.Byte.Array[1, 9], (at, bytes) => (Edit)new InsertBytes(at, bytes))),
        (1, Gen.Select(Position, Gen.Int[1, 64], (at, n) => (Edit)new DeleteBytes(at, n))),
        (2, Position.Select(length => (Edit)new Truncate(length))));

    private static readonly Gen<Case> Cases = Gen.Frequency(
        (3, (IGen<Case>)Gen.Select(Gen.Int[0, 1], HeaderEdit.Array[1, 3], FileEdit.Array[0, 1], (b, h, f) => new Case(b, h, f))),
        (2, Gen.Select(Gen.Int[0, 1], FileEdit.Array[1, 3], (b, f) => new Case(b, [], f))));

    [Fact]
    public void MutatedCheckpointsLoadCorrectlyOrThrowInvalidDataExceptionNamingTheFile()
    {
        int loaded = 0, rejected = 0;
        Cases.Sample(c =>
        {
            byte[] bytes = Apply(_bases[c.Base], c);
            string path = Path.Combine(_directory, Guid.NewGuid().ToString("N") + ".safetensors");
            File.WriteAllBytes(path, bytes);
            try
            {
                if (TryLoad(path, bytes, withOptimizer: c.Base == 1)) Interlocked.Increment(ref loaded);
                else Interlocked.Increment(ref rejected);
            }
            finally
            {
                File.Delete(path);
            }
        }, iter: 4000, print: c => c.ToString());

        // The property means little unless both outcomes occur often.
        Assert.True(loaded >= 200, $"only {loaded} mutated files loaded");
        Assert.True(rejected >= 1000, $"only {rejected} mutated files were rejected");
    }

    /// <summary>True when the file loaded (and what was loaded is checked); false when it was rejected properly.</summary>
    private static bool TryLoad(string path, byte[] bytes, bool withOptimizer)
    {
        var parameters = new float[Network.ParameterCount];
        Sgd? sgd = withOptimizer ? new Sgd(parameters.Length, new SgdOptions()) : null;
        try
        {
            Checkpoint.Load(path, Network, parameters, sgd);
        }
        catch (InvalidDataException e)
        {
            Assert.Contains(path, e.Message);
            // The header alone may be valid (the tensors are what the network rejects) or not; nothing else is allowed.
            try { SafeTensors.ReadHeader(path); } catch (InvalidDataException) { }
            return false;
        }
        // Loaded: every tensor holds exactly the bytes its data_offsets point at.
        SafeTensorHeader header = SafeTensors.ReadHeader(path);
        foreach (ParameterDescriptor parameter in Network.Parameters)
        {
            CheckTensor(bytes, header, parameter.Name, parameters.AsSpan(parameter.Offset, parameter.Length));
            if (sgd is not null)
                CheckTensor(bytes, header, Checkpoint.VelocityPrefix + parameter.Name, sgd.Velocity.AsSpan(parameter.Offset, parameter.Length));
        }
        return true;
    }

    private static void CheckTensor(byte[] file, SafeTensorHeader header, string name, ReadOnlySpan<float> loaded)
    {
        SafeTensorEntry entry = header.Find(name)!;
        ReadOnlySpan<byte> expected = file.AsSpan((int)(header.DataStart + entry.Begin), (int)(entry.End - entry.Begin));
        Assert.True(expected.SequenceEqual(MemoryMarshal.AsBytes(loaded)), $"tensor '{name}' does not hold its file bytes");
    }

    private static byte[] Apply(byte[] file, Case c)
    {
        byte[] bytes = file;
        if (c.HeaderEdits.Length > 0)
        {
            int headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
            byte[] header = file[8..(8 + headerLength)];
            foreach (Edit edit in c.HeaderEdits) header = ApplyOne(header, edit);
            bytes = new byte[8 + header.Length + (file.Length - 8 - headerLength)];
            BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
            header.CopyTo(bytes, 8);
            file.AsSpan(8 + headerLength).CopyTo(bytes.AsSpan(8 + header.Length));
        }
        foreach (Edit edit in c.FileEdits) bytes = ApplyOne(bytes, edit);
        return bytes;
    }

    private static readonly Regex NumberToken = new(@"-?\d+", RegexOptions.CultureInvariant);
    private static readonly Regex StringToken = new("\"(?:[^\"\\\\]|\\\\.)*\"", RegexOptions.CultureInvariant);

    private static byte[] ApplyOne(byte[] bytes, Edit edit)
    {
        switch (edit)
        {
            case OverwriteByte o when bytes.Length > 0:
                byte[] copy = (byte[])bytes.Clone();
                copy[o.At % copy.Length] = o.Value;
                return copy;
            case OverwriteNearEnd o when bytes.Length > 0:
                byte[] changed = (byte[])bytes.Clone();
                changed[bytes.Length - 1 - o.Back % Math.Min(bytes.Length, 64)] = o.Value;
                return changed;
            case InsertBytes i:
                int at = i.At % (bytes.Length + 1);
                return [.. bytes.AsSpan(0, at), .. i.Bytes, .. bytes.AsSpan(at)];
            case DeleteBytes d when bytes.Length > 0:
                int from = d.At % bytes.Length;
                return [.. bytes.AsSpan(0, from), .. bytes.AsSpan(Math.Min(bytes.Length, from + d.Count))];
            case Truncate t:
                return bytes[..(t.Length % (bytes.Length + 1))];
            case ReplaceNumber n:
                return ReplaceMatch(bytes, NumberToken, n.Which, n.Text);
            case ReplaceString s:
                return ReplaceMatch(bytes, StringToken, s.Which, s.Text);
            default:
                return bytes;
        }
    }

    /// <summary>Replaces the (which mod count)-th match in the header text; the header is ASCII apart from string contents.</summary>
    private static byte[] ReplaceMatch(byte[] header, Regex pattern, int which, string text)
    {
        string json = Encoding.Latin1.GetString(header); // one char per byte, so indexes are byte offsets
        MatchCollection matches = pattern.Matches(json);
        if (matches.Count == 0) return header;
        Match match = matches[which % matches.Count];
        return [.. header.AsSpan(0, match.Index), .. Encoding.UTF8.GetBytes(text), .. header.AsSpan(match.Index + match.Length)];
    }
}
