using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using System.Runtime.InteropServices;

namespace AlexNetCompiler.Data;

/// <summary>
/// The decompressed contents of a gzip file (RFC 1952): the data of its members, one after another, read from a
/// seekable stream positioned at the first member. GZipStream ends quietly where the file ends, even inside the
/// compressed data or the 8-byte trailer, and ignores whatever follows the last member; this stream checks each
/// member's framing instead. A file cut short is reported as truncated, bytes after a member that do not start
/// another as trailing data, a trailer that does not match the data as corrupt: each an
/// <see cref="InvalidDataException"/> naming the file.
/// </summary>
internal sealed class GzipFileStream(Stream file, string source) : Stream
{
    private const byte Id1 = 0x1f, Id2 = 0x8b, DeflateMethod = 8;
    private const byte HeaderCrcFlag = 0x02, ExtraFlag = 0x04, NameFlag = 0x08, CommentFlag = 0x10, ReservedFlags = 0xE0;
    private const int TrailerLength = 8;

    private readonly long _end = file.Length;
    private readonly Crc32 _dataCrc = new();
    private CompressedInput? _input;
    private DeflateStream? _member;
    private long _memberStart, _memberDataStart, _memberLength;
    private bool _ended;

    public override int Read(Span<byte> buffer)
    {
        while (!_ended && buffer.Length > 0)
        {
            if (_member is null)
            {
                _ended = !StartMember();
                continue;
            }
            int read = Inflate(buffer);
            if (read > 0)
            {
                _dataCrc.Append(buffer[..read]);
                _memberLength += read;
                return read;
            }
            EndMember();
        }
        return 0;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    private int Inflate(Span<byte> buffer)
    {
        try
        {
            return _member!.Read(buffer);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{source}: not a valid gzip stream ({e.Message}).", e);
        }
    }

    /// <summary>Reads the header of the member at the current position; false at the end of the file.</summary>
    private bool StartMember()
    {
        _memberStart = file.Position;
        if (_memberStart == _end) return false;
        Span<byte> magic = stackalloc byte[2];
        int read = file.ReadAtLeast(magic, magic.Length, throwOnEndOfStream: false);
        if (read < magic.Length || magic[0] != Id1 || magic[1] != Id2)
            throw new InvalidDataException($"{source}: {_end - _memberStart} bytes of trailing data after the gzip stream " +
                $"(at offset {_memberStart}; they do not start another gzip member).");

        var header = new List<byte>(magic.ToArray());
        byte method = HeaderByte(header), flags = HeaderByte(header);
        for (int i = 0; i < 6; i++) HeaderByte(header); // modification time, extra flags, operating system
        if (method != DeflateMethod || (flags & ReservedFlags) != 0)
            throw new InvalidDataException($"{source}: not a valid gzip stream (the member at offset {_memberStart} has " +
                $"compression method {method} and flags 0x{flags:x2}; only deflate (8) without reserved flags is defined).");
        if ((flags & ExtraFlag) != 0)
        {
            int extraLength = HeaderByte(header) | HeaderByte(header) << 8;
            for (int i = 0; i < extraLength; i++) HeaderByte(header);
        }
        if ((flags & NameFlag) != 0) while (HeaderByte(header) != 0) { }
        if ((flags & CommentFlag) != 0) while (HeaderByte(header) != 0) { }
        if ((flags & HeaderCrcFlag) != 0)
        {
            uint expected = Crc32.HashToUInt32(CollectionsMarshal.AsSpan(header)) & 0xFFFF;
            int stored = HeaderByte(header) | HeaderByte(header) << 8;
            if (stored != expected)
                throw new InvalidDataException($"{source}: corrupt gzip stream (the header CRC of the member at offset {_memberStart} does not match).");
        }

        _memberDataStart = file.Position;
        _input = new CompressedInput(file, byteByByteFrom: long.MaxValue);
        _member = new DeflateStream(_input, CompressionMode.Decompress, leaveOpen: true);
        _dataCrc.Reset();
        _memberLength = 0;
        return true;
    }

    private byte HeaderByte(List<byte> header)
    {
        int value = file.ReadByte();
        if (value < 0)
            throw new InvalidDataException($"{source}: truncated: the file ends inside the header of the gzip member at offset {_memberStart}.");
        header.Add((byte)value);
        return (byte)value;
    }

    /// <summary>
    /// The member's compressed data has ended: checks its trailer (CRC-32 and length of the data, little-endian) and
    /// moves to the byte after it.
    /// </summary>
    private void EndMember()
    {
        _member!.Dispose();
        _member = null;
        if (_input!.ReachedTheEnd)
            throw new InvalidDataException($"{source}: truncated: the file ends inside the compressed data of the gzip member at offset {_memberStart}.");

        file.Position = CompressedDataEnd(_input.LastReadStart);
        Span<byte> trailer = stackalloc byte[TrailerLength];
        if (file.ReadAtLeast(trailer, trailer.Length, throwOnEndOfStream: false) < trailer.Length)
            throw new InvalidDataException($"{source}: truncated: the file ends before the 8-byte trailer of the gzip member at offset {_memberStart} is complete.");
        bool crcMatches = BinaryPrimitives.ReadUInt32LittleEndian(trailer) == _dataCrc.GetCurrentHashAsUInt32();
        bool lengthMatches = BinaryPrimitives.ReadUInt32LittleEndian(trailer[4..]) == (uint)_memberLength;
        if (crcMatches && lengthMatches) return;
        string differs = (crcMatches, lengthMatches) switch
        {
            (false, false) => "CRC-32 and length differ",
            (false, true) => "CRC-32 differs",
            _ => "length differs",
        };
        throw new InvalidDataException($"{source}: corrupt gzip stream (the trailer of the member at offset {_memberStart} does not match its " +
            $"{_memberLength} bytes of data: {differs}).");
    }

    /// <summary>
    /// Where the member's compressed data ends. The decompressor reads ahead in blocks and does not say; it asks for
    /// more only when it needs at least one more byte, so the data ended inside the last block it read. Inflating the
    /// member again, a byte at a time through that block, tells exactly where.
    /// </summary>
    private long CompressedDataEnd(long lastBlockStart)
    {
        file.Position = _memberDataStart;
        var input = new CompressedInput(file, byteByByteFrom: lastBlockStart);
        using var member = new DeflateStream(input, CompressionMode.Decompress, leaveOpen: true);
        var discarded = new byte[1 << 16];
        while (member.Read(discarded) > 0) { }
        return input.LastReadEnd;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _member?.Dispose();
        base.Dispose(disposing);
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    /// <summary>
    /// The file as one member's decompressor reads it, in blocks as asked up to <paramref name="byteByByteFrom"/>, a
    /// byte at a time from there: remembers the last block read and whether the file ran out.
    /// </summary>
    private sealed class CompressedInput(Stream file, long byteByByteFrom) : Stream
    {
        public long LastReadStart { get; private set; }
        public long LastReadEnd { get; private set; }
        public bool ReachedTheEnd { get; private set; }

        public override int Read(Span<byte> buffer)
        {
            long start = file.Position;
            int length = start >= byteByByteFrom ? Math.Min(1, buffer.Length) : (int)Math.Min(buffer.Length, byteByByteFrom - start);
            int read = file.Read(buffer[..length]);
            if (read == 0)
            {
                ReachedTheEnd = buffer.Length > 0;
                return 0;
            }
            (LastReadStart, LastReadEnd) = (start, start + read);
            return read;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
