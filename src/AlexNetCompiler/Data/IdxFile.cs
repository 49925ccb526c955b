using System.Buffers.Binary;
using System.IO.Compression;

namespace AlexNetCompiler.Data;

/// <summary>
/// The IDX format (LeCun et al., used by MNIST and Fashion-MNIST): two zero bytes, a data-type byte
/// (0x08 = unsigned byte), a dimension-count byte, then each dimension as a big-endian int32, then the
/// values in row-major order. Files may be gzip-compressed; they are detected by the gzip magic 0x1f 0x8b,
/// not by the file name. Reading is driven by the header: the dimensions are read first, the data size they
/// declare is checked against <see cref="MaxDataBytes"/> and against what the file can hold, and decompression
/// stops there, so a small gzip file that inflates to gigabytes (a "gzip bomb") costs at most what its header
/// declares. A gzip file cut short, or with trailing data after its gzip stream, is refused as such
/// (<see cref="GzipFileStream"/>). Every problem with a file's contents is an <see cref="InvalidDataException"/>
/// naming the file.
/// </summary>
public sealed class IdxFile
{
    public const byte UnsignedByte = 0x08;

    /// <summary>
    /// The most data bytes a header may declare: the longest byte array .NET allocates (Array.MaxLength, just under
    /// 2 GiB). The data is held in one array; the full Fashion-MNIST training images take 47 MB.
    /// </summary>
    public const int MaxDataBytes = 0x7FFFFFC7;

    /// <summary>
    /// Deflate expands one compressed byte into at most 1032 bytes (a 258-byte match coded in two bits), so a gzip
    /// file of n bytes cannot hold more than 1032 n bytes of data; a header declaring more is refused unread.
    /// </summary>
    private const long MaxDeflateExpansion = 1032;

    public IdxFile(int[] dimensions, byte[] data)
    {
        ArgumentNullException.ThrowIfNull(dimensions);
        ArgumentNullException.ThrowIfNull(data);
        if (dimensions.Any(d => d < 0) || Count(dimensions) != data.Length)
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
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        return Read(file, path);
    }

    /// <summary>Parses the contents of an IDX file, gzip-compressed or raw; <paramref name="source"/> names it in errors.</summary>
    public static IdxFile FromFileBytes(byte[] fileBytes, string source)
    {
        ArgumentNullException.ThrowIfNull(fileBytes);
        using var stream = new MemoryStream(fileBytes, writable: false);
        return Read(stream, source);
    }

    /// <summary>Reads a whole IDX file, raw or gzip, from a seekable stream positioned at its start.</summary>
    private static IdxFile Read(Stream file, string source)
    {
        long fileLength = file.Length - file.Position;
        Span<byte> magic = stackalloc byte[2];
        int read = file.ReadAtLeast(magic, magic.Length, throwOnEndOfStream: false);
        file.Seek(-read, SeekOrigin.Current);
        if (read < 2 || magic[0] != 0x1f || magic[1] != 0x8b)
            return ReadIdx(file, source, fileLength, compressed: false);
        using var gzip = new GzipFileStream(file, source);
        return ReadIdx(gzip, source, fileLength, compressed: true);
    }

    /// <summary>
    /// Reads the header, then exactly the data bytes it declares, then checks that nothing follows. For a raw file the
    /// length is known and checked before the data is allocated; for gzip, decompression stops one byte past the
    /// declared size (that byte, if any, is an error; looking for it also checks the end of the gzip stream: the last
    /// member's trailer, and that no data follows it).
    /// </summary>
    private static IdxFile ReadIdx(Stream stream, string source, long fileLength, bool compressed)
    {
        Span<byte> prefix = stackalloc byte[4];
        int read = Fill(stream, prefix);
        if (read < prefix.Length)
            throw new InvalidDataException($"{source}: truncated IDX header ({read} bytes, need at least 4).");
        int rank = CheckPrefix(prefix, source);
        int headerLength = 4 + 4 * rank;
        byte[] dimensionBytes = new byte[4 * rank];
        read = Fill(stream, dimensionBytes);
        if (read < dimensionBytes.Length)
            throw new InvalidDataException($"{source}: truncated IDX header ({4 + read} bytes, {rank} dimensions need {headerLength}).");
        int[] dimensions = ParseDimensions(dimensionBytes, source, out long count);

        if (!compressed)
        {
            CheckDataLength(source, dimensions, count, fileLength - headerLength);
        }
        else if (count > MaxDeflateExpansion * fileLength)
        {
            throw new InvalidDataException($"{source}: truncated: dimensions [{string.Join(", ", dimensions)}] need {count} data bytes " +
                $"but a gzip file of {fileLength} bytes cannot decompress to more than {MaxDeflateExpansion * fileLength}.");
        }

        var data = new byte[count];
        read = Fill(stream, data);
        if (read < data.Length)
            throw new InvalidDataException($"{source}: truncated: dimensions [{string.Join(", ", dimensions)}] need {count} data bytes but only {read} follow the header.");
        Span<byte> probe = stackalloc byte[1];
        if (Fill(stream, probe) > 0)
            throw new InvalidDataException($"{source}: unexpected data after the {count} data bytes of dimensions [{string.Join(", ", dimensions)}] " +
                "(decompression stopped there).");
        return new IdxFile(dimensions, data);
    }

    /// <summary>Reads until the buffer is full or the stream ends.</summary>
    private static int Fill(Stream stream, Span<byte> buffer) => stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);

    /// <summary>Parses the bytes of an (uncompressed) IDX file; <paramref name="source"/> names it in errors.</summary>
    public static IdxFile Parse(ReadOnlySpan<byte> bytes, string source)
    {
        if (bytes.Length < 4)
            throw new InvalidDataException($"{source}: truncated IDX header ({bytes.Length} bytes, need at least 4).");
        int rank = CheckPrefix(bytes[..4], source);
        int headerLength = 4 + 4 * rank;
        if (bytes.Length < headerLength)
            throw new InvalidDataException($"{source}: truncated IDX header ({bytes.Length} bytes, {rank} dimensions need {headerLength}).");
        int[] dimensions = ParseDimensions(bytes[4..headerLength], source, out long count);
        CheckDataLength(source, dimensions, count, bytes.Length - headerLength);
        return new IdxFile(dimensions, bytes.Slice(headerLength).ToArray());
    }

    /// <summary>Checks the magic number and data type of the first four bytes; returns the number of dimensions.</summary>
    private static int CheckPrefix(ReadOnlySpan<byte> prefix, string source)
    {
        if (prefix[0] != 0 || prefix[1] != 0)
            throw new InvalidDataException($"{source}: bad IDX magic number 0x{prefix[0]:x2}{prefix[1]:x2}{prefix[2]:x2}{prefix[3]:x2} (must start with two zero bytes).");
        byte dataType = prefix[2];
        if (dataType != UnsignedByte)
            throw new InvalidDataException($"{source}: IDX data type 0x{dataType:x2} ({DataTypeName(dataType)}) is not supported; images and labels must be 0x08 (unsigned byte).");
        int rank = prefix[3];
        if (rank == 0)
            throw new InvalidDataException($"{source}: IDX header declares 0 dimensions.");
        return rank;
    }

    /// <summary>Big-endian dimensions; their product (checked 64-bit arithmetic) must not exceed <see cref="MaxDataBytes"/>.</summary>
    private static int[] ParseDimensions(ReadOnlySpan<byte> bytes, string source, out long count)
    {
        var dimensions = new int[bytes.Length / 4];
        count = 1;
        for (int i = 0; i < dimensions.Length; i++)
        {
            int d = BinaryPrimitives.ReadInt32BigEndian(bytes.Slice(4 * i, 4));
            if (d < 0)
                throw new InvalidDataException($"{source}: IDX dimension {i} is negative ({d}).");
            dimensions[i] = d;
            // Checked although it cannot overflow: count is at most MaxDataBytes before each factor below 2^31.
            count = checked(count * d);
            if (count > MaxDataBytes)
                throw new InvalidDataException($"{source}: IDX dimensions [{string.Join(", ", dimensions.Take(i + 1))}...] declare more than {MaxDataBytes} data bytes, the most one file may hold.");
        }
        return dimensions;
    }

    private static void CheckDataLength(string source, int[] dimensions, long count, long available)
    {
        if (available < count)
            throw new InvalidDataException($"{source}: truncated: dimensions [{string.Join(", ", dimensions)}] need {count} data bytes but only {available} follow the header.");
        if (available > count)
            throw new InvalidDataException($"{source}: {available - count} unexpected bytes after the {count} data bytes of dimensions [{string.Join(", ", dimensions)}].");
    }

    /// <summary>The product of the dimensions, or -1 when it overflows 64 bits.</summary>
    private static long Count(int[] dimensions)
    {
        long count = 1;
        try
        {
            foreach (int d in dimensions) count = checked(count * d);
        }
        catch (OverflowException)
        {
            return -1;
        }
        return count;
    }

    /// <summary>Writes an unsigned-byte IDX file, gzip-compressed when <paramref name="gzip"/> is true.</summary>
    public static void Write(string path, int[] dimensions, ReadOnlySpan<byte> data, bool gzip)
    {
        if (dimensions.Any(d => d < 0) || Count(dimensions) != data.Length)
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
