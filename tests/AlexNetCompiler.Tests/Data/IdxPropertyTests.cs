using System.Buffers.Binary;
using System.IO.Compression;
using AlexNetCompiler.Data;
using CsCheck;

namespace AlexNetCompiler.Tests.Data;

/// <summary>
/// Valid IDX files, raw and gzip, mutated at random: bytes overwritten, inserted or cut, dimensions and the rank
/// rewritten, either before compression (the reader sees a well-formed gzip stream of a broken IDX file) or after it
/// (a broken gzip stream). Reading must either give exactly the dimensions and data the bytes hold, or throw
/// InvalidDataException naming the file; any other exception fails. Accepted image files also go through
/// IdxDataset with a label file, and accepted label files with an image file.
/// </summary>
public sealed class IdxPropertyTests : IDisposable
{
    private static readonly string[] TenClasses = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

    private static readonly byte[][] Bases =
    [
        IdxBytes.File([4, 3, 5], IdxBytes.PatternImages(4, 3, 5)),
        IdxBytes.File([4], [3, 0, 9, 1]),
        IdxBytes.File([2, 1, 3, 3], IdxBytes.PatternImages(2, 3, 3)),
    ];

    private static readonly IdxFile Images = IdxFile.Parse(Bases[0], "images");
    private static readonly IdxFile Labels = IdxFile.Parse(Bases[1], "labels");

    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    public abstract record Edit;
    public sealed record OverwriteByte(int At, byte Value) : Edit;
    public sealed record InsertBytes(int At, byte[] Bytes) : Edit
    {
        public override string ToString() => $"InsertBytes {{ At = {At}, Bytes = {Convert.ToHexString(Bytes)} }}";
    }
    public sealed record DeleteBytes(int At, int Count) : Edit;
    public sealed record Truncate(int Length) : Edit;
    public sealed record SetDimension(int Index, int Value) : Edit;
    public sealed record SetRank(byte Rank) : Edit;

    /// <summary>RawEdits act on the IDX bytes; with Gzip the result is compressed, then CompressedEdits act on that.</summary>
    public sealed record Case(int Base, Edit[] RawEdits, bool Gzip, Edit[] CompressedEdits, bool ViaFile)
    {
        public override string ToString() =>
            $"base {Base}, raw edits [{string.Join(", ", RawEdits.Select(e => e.ToString()))}], gzip {Gzip}, " +
            $"compressed edits [{string.Join(", ", CompressedEdits.Select(e => e.ToString()))}], via file {ViaFile}";
    }

    private static readonly Gen<int> Position = Gen.Int[0, 1 << 16];
    private static readonly Gen<int> HeaderPosition = Gen.Int[0, 23];

    private static readonly Gen<int> DimensionValue = Gen.Frequency(
        (3, (IGen<int>)Gen.OneOf(0, 1, 2, 3, 4, 5, 16, -1, int.MinValue, int.MaxValue, 65536, 46341, 1 << 30)),
        (1, Gen.Int));

    private static readonly Gen<Edit> RawEdit = Gen.Frequency(
        (3, (IGen<Edit>)Gen.Select(Gen.Frequency((1, (IGen<int>)Position), (1, HeaderPosition)), Gen.Byte, (at, b) => (Edit)new OverwriteByte(at, b))),
        (2, Gen.Select(Gen.Frequency((1, (IGen<int>)Position), (1, HeaderPosition)), Gen.Byte.Array[1, 8], (at, bytes) => (Edit)new InsertBytes(at, bytes))),
        (1, Gen.Select(Position, Gen.Int[1, 32], (at, n) => (Edit)new DeleteBytes(at, n))),
        (2, Position.Select(length => (Edit)new Truncate(length))),
        (3, Gen.Select(Gen.Int[0, 3], DimensionValue, (i, v) => (Edit)new SetDimension(i, v))),
        (1, Gen.OneOf<byte>(0, 1, 2, 3, 4, 5, 255).Select(r => (Edit)new SetRank(r))));

    private static readonly Gen<Edit> CompressedEdit = Gen.Frequency(
        (3, (IGen<Edit>)Gen.Select(Position, Gen.Byte, (at, b) => (Edit)new OverwriteByte(at, b))),
        (1, Gen.Select(Position, Gen.Byte.Array[1, 8], (at, bytes) => (Edit)new InsertBytes(at, bytes))),
        (1, Gen.Select(Position, Gen.Int[1, 16], (at, n) => (Edit)new DeleteBytes(at, n))),
        (2, Position.Select(length => (Edit)new Truncate(length))));

    private static readonly Gen<Case> Cases = Gen.Select(
        Gen.Int[0, Bases.Length - 1],
        RawEdit.Array[0, 3],
        Gen.Bool,
        Gen.Frequency((2, (IGen<Edit[]>)Gen.Const(Array.Empty<Edit>())), (1, CompressedEdit.Array[1, 2])),
        Gen.Frequency((9, (IGen<bool>)Gen.Const(false)), (1, Gen.Const(true))),
        (b, raw, gzip, compressed, viaFile) => new Case(b, raw, gzip, gzip ? compressed : [], viaFile));

    [Fact]
    public void MutatedIdxFilesLoadCorrectlyOrThrowInvalidDataExceptionNamingTheFile()
    {
        int loaded = 0, rejected = 0;
        Cases.Sample(c =>
        {
            byte[] bytes = Bases[c.Base];
            foreach (Edit edit in c.RawEdits) bytes = Apply(bytes, edit);
            if (c.Gzip) bytes = IdxBytes.Gzip(bytes);
            foreach (Edit edit in c.CompressedEdits) bytes = Apply(bytes, edit);

            string source = c.ViaFile ? _folder.File(Guid.NewGuid().ToString("N")) : "case-" + Guid.NewGuid().ToString("N");
            IdxFile result;
            try
            {
                if (c.ViaFile) File.WriteAllBytes(source, bytes);
                result = c.ViaFile ? IdxFile.Read(source) : IdxFile.FromFileBytes(bytes, source);
            }
            catch (InvalidDataException e)
            {
                Assert.Contains(source, e.Message);
                Interlocked.Increment(ref rejected);
                return;
            }
            finally
            {
                if (c.ViaFile) File.Delete(source);
            }
            CheckAgainstTheBytes(bytes, result);
            CheckAsDataset(result, source);
            Interlocked.Increment(ref loaded);
        }, iter: 10_000, print: c => c.ToString());

        Assert.True(loaded >= 1000, $"only {loaded} mutated files loaded");
        Assert.True(rejected >= 3000, $"only {rejected} mutated files were rejected");
    }

    /// <summary>An accepted file holds exactly what its (decompressed) bytes say, decoded here independently.</summary>
    private static void CheckAgainstTheBytes(byte[] file, IdxFile result)
    {
        byte[] raw = file;
        if (file.Length >= 2 && file[0] == 0x1f && file[1] == 0x8b)
        {
            using var gzip = new GZipStream(new MemoryStream(file), CompressionMode.Decompress);
            using var output = new MemoryStream();
            gzip.CopyTo(output);
            raw = output.ToArray();
        }
        Assert.Equal((0, 0, 0x08), (raw[0], raw[1], raw[2]));
        int rank = raw[3];
        var dimensions = new int[rank];
        for (int i = 0; i < rank; i++) dimensions[i] = BinaryPrimitives.ReadInt32BigEndian(raw.AsSpan(4 + 4 * i));
        Assert.Equal(dimensions, result.Dimensions);
        Assert.Equal(raw[(4 + 4 * rank)..], result.Data);
    }

    /// <summary>The dataset builder gives a dataset or InvalidDataException, for the file as images and as labels.</summary>
    private static void CheckAsDataset(IdxFile file, string source)
    {
        foreach (bool asImages in new[] { true, false })
        {
            try
            {
                Dataset data = asImages
                    ? IdxDataset.FromFiles(file, source, Labels, "labels", TenClasses)
                    : IdxDataset.FromFiles(Images, "images", file, source, TenClasses);
                Assert.Equal(data.Count * (long)data.SampleLength, data.Images.Length);
            }
            catch (InvalidDataException e)
            {
                Assert.True(e.Message.Contains(source) || e.Message.Contains("labels") || e.Message.Contains("images"), e.Message);
            }
        }
    }

    private static byte[] Apply(byte[] bytes, Edit edit)
    {
        switch (edit)
        {
            case OverwriteByte o when bytes.Length > 0:
                byte[] copy = (byte[])bytes.Clone();
                copy[o.At % copy.Length] = o.Value;
                return copy;
            case InsertBytes i:
                int at = i.At % (bytes.Length + 1);
                return [.. bytes.AsSpan(0, at), .. i.Bytes, .. bytes.AsSpan(at)];
            case DeleteBytes d when bytes.Length > 0:
                int from = d.At % bytes.Length;
                return [.. bytes.AsSpan(0, from), .. bytes.AsSpan(Math.Min(bytes.Length, from + d.Count))];
            case Truncate t:
                return bytes[..(t.Length % (bytes.Length + 1))];
            case SetDimension s when bytes.Length >= 8 + 4 * s.Index:
                byte[] withDimension = (byte[])bytes.Clone();
                BinaryPrimitives.WriteInt32BigEndian(withDimension.AsSpan(4 + 4 * s.Index), s.Value);
                return withDimension;
            case SetRank r when bytes.Length >= 4:
                byte[] withRank = (byte[])bytes.Clone();
                withRank[3] = r.Rank;
                return withRank;
            default:
                return bytes;
        }
    }
}
