using System.Buffers.Binary;
using System.IO.Compression;

namespace AlexNetCompiler.Tests.Data;

/// <summary>A temporary folder for files a test writes; deleted afterwards.</summary>
public sealed class TempFolder : IDisposable
{
    public TempFolder()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "anc-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>Writes IDX bytes by hand (independently of the code under test) so the reader is tested against the format, not itself.</summary>
public static class IdxBytes
{
    public static byte[] Header(byte dataType, params int[] dimensions)
    {
        var header = new byte[4 + 4 * dimensions.Length];
        header[2] = dataType;
        header[3] = (byte)dimensions.Length;
        for (int i = 0; i < dimensions.Length; i++) BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4 + 4 * i), dimensions[i]);
        return header;
    }

    public static byte[] File(int[] dimensions, byte[] data) => [.. Header(0x08, dimensions), .. data];

    public static byte[] Gzip(byte[] bytes)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true)) gzip.Write(bytes);
        return output.ToArray();
    }

    /// <summary>Images whose pixel (n, y, x) is (n * 31 + y * 7 + x) mod 256: every value is predictable.</summary>
    public static byte[] PatternImages(int count, int height, int width)
    {
        var data = new byte[count * height * width];
        for (int n = 0; n < count; n++)
            for (int y = 0; y < height; y++)
                for (int x = 0; x < width; x++)
                    data[(n * height + y) * width + x] = (byte)((n * 31 + y * 7 + x) % 256);
        return data;
    }
}
