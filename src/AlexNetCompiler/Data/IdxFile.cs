using System.Buffers.Binary;
using System.IO.Compression;

namespace AlexNetCompiler.Data;

/// <summary>
/// The IDX format (LeCun et al., used by MNIST and Fashion-MNIST): two zero bytes, a data-type byte
/// (0x08 = unsigned byte), a dimension-count byte, then each dimension as a big-endian int32, then the
/// values in row-major order. Files may be gzip-compressed; they are detected by the gzip magic 0x1f 0x8b,
/// not by the file name.
/// </summary>
public sealed class IdxFile
{
    public const byte UnsignedByte = 0x08;

    public IdxFile(int[] dimensions, byte[] data)
    {
        long count = 1;
        foreach (int d in dimensions) count *= d;
        if (count != data.Length)
            throw new ArgumentException($"IDX data of {data.Length} bytes does not match dimensions [{string.Join(", ", dimensions)}].");
        Dimensions = dimensions;
        Data = data;
    }

    public int[] Dimensions { get; }
    public byte[] Data { get; }

    /// <summary>Reads an IDX file of unsigned bytes; throws InvalidDataException naming the file and the problem.</summary>
    public static IdxFile Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found.", path);
        return FromFileBytes(File.ReadAllBytes(path), path);
    }

    /// <summary>Parses the contents of an IDX file, gzip-compressed or raw; <paramref name="source"/> names it in errors.</summary>
    public static IdxFile FromFileBytes(byte[] fileBytes, string source)
    {
        byte[] bytes;
        try
        {
            bytes = Decompress(fileBytes);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{source}: not a valid gzip stream ({e.Message}).", e);
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"{source}: truncated gzip stream ({e.Message}).", e);
        }
        return Parse(bytes, source);
    }

    /// <summary>Parses the bytes of an (uncompressed) IDX file; <paramref name="source"/> names it in errors.</summary>
    public static IdxFile Parse(ReadOnlySpan<byte> bytes, string source)
    {
        if (bytes.Length < 4)
            throw new InvalidDataException($"{source}: truncated IDX header ({bytes.Length} bytes, need at least 4).");
        if (bytes[0] != 0 || bytes[1] != 0)
            throw new InvalidDataException($"{source}: bad IDX magic number 0x{bytes[0]:x2}{bytes[1]:x2}{bytes[2]:x2}{bytes[3]:x2} (must start with two zero bytes).");
        byte dataType = bytes[2];
        if (dataType != UnsignedByte)
            throw new InvalidDataException($"{source}: IDX data type 0x{dataType:x2} ({DataTypeName(dataType)}) is not supported; images and labels must be 0x08 (unsigned byte).");
        int rank = bytes[3];
        if (rank == 0)
            throw new InvalidDataException($"{source}: IDX header declares 0 dimensions.");
        int headerLength = 4 + 4 * rank;
        if (bytes.Length < headerLength)
            throw new InvalidDataException($"{source}: truncated IDX header ({bytes.Length} bytes, {rank} dimensions need {headerLength}).");
        var dimensions = new int[rank];
        long count = 1;
        for (int i = 0; i < rank; i++)
        {
            int d = BinaryPrimitives.ReadInt32BigEndian(bytes.Slice(4 + 4 * i, 4));
            if (d < 0)
                throw new InvalidDataException($"{source}: IDX dimension {i} is negative ({d}).");
            dimensions[i] = d;
            count *= d;
            if (count > Array.MaxLength)
                throw new InvalidDataException($"{source}: IDX dimensions [{string.Join(", ", dimensions.Take(i + 1))}...] describe more than {Array.MaxLength} values.");
        }
        long available = bytes.Length - headerLength;
        if (available < count)
            throw new InvalidDataException($"{source}: truncated: dimensions [{string.Join(", ", dimensions)}] need {count} data bytes but only {available} follow the header.");
        if (available > count)
            throw new InvalidDataException($"{source}: {available - count} unexpected bytes after the {count} data bytes of dimensions [{string.Join(", ", dimensions)}].");
        return new IdxFile(dimensions, bytes.Slice(headerLength).ToArray());
    }

    /// <summary>Writes an unsigned-byte IDX file, gzip-compressed when <paramref name="gzip"/> is true.</summary>
    public static void Write(string path, int[] dimensions, ReadOnlySpan<byte> data, bool gzip)
    {
        long count = 1;
        foreach (int d in dimensions) count *= d;
        if (count != data.Length)
            throw new ArgumentException($"{path}: {data.Length} bytes do not match dimensions [{string.Join(", ", dimensions)}].");
        using FileStream file = File.Create(path);
        using Stream output = gzip ? new GZipStream(file, CompressionLevel.SmallestSize) : file;
        Span<byte> header = stackalloc byte[4 + 4 * dimensions.Length];
        header[0] = 0;
        header[1] = 0;
        header[2] = UnsignedByte;
        header[3] = checked((byte)dimensions.Length);
        for (int i = 0; i < dimensions.Length; i++) BinaryPrimitives.WriteInt32BigEndian(header.Slice(4 + 4 * i), dimensions[i]);
        output.Write(header);
        output.Write(data);
    }

    private static byte[] Decompress(byte[] raw)
    {
        if (raw.Length < 2 || raw[0] != 0x1f || raw[1] != 0x8b) return raw;
        using var compressed = new MemoryStream(raw, writable: false);
        using var gzip = new GZipStream(compressed, CompressionMode.Decompress);
        using var result = new MemoryStream(raw.Length * 4);
        gzip.CopyTo(result);
        return result.ToArray();
    }

    private static string DataTypeName(byte type) => type switch
    {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0B => "int16",
        0x0C => "int32",
        0x0D => "float32",
        0x0E => "float64",
        _ => "unknown",
    };
}
