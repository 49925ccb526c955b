using System.Buffers;
using System.Text.RegularExpressions;
using AlexNetCompiler.Checkpoints;

namespace AlexNetCompiler.Tests.Checkpoints;

/// <summary>Atomic writes with a temporary file per writer, and the clean-up of temporary files left by crashed writers.</summary>
public sealed class SafeTensorsWriteTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("anc-safetensors-write-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private string PathOf(string name) => Path.Combine(_directory, name);

    /// <summary>A process id that no process has: Linux ids stay below pid_max (at most 2^22).</summary>
    private const int DeadProcessId = 2_000_000_000;

    private static SafeTensorData[] Tensors(float value, ReadOnlyMemory<float>? second = null) =>
    [
        new("a", [2, 3], Enumerable.Repeat(value, 6).ToArray()),
        new("b", [4], second ?? Enumerable.Repeat(value + 1, 4).ToArray()),
    ];

    /// <summary>Float memory that runs <paramref name="onRead"/> when the writer takes its span (mid-write).</summary>
    private sealed class InterceptedMemory(float[] values, Action onRead) : MemoryManager<float>
    {
        // The base class would take the span (and so run onRead) just to learn the length.
        public override Memory<float> Memory => CreateMemory(values.Length);

        public override Span<float> GetSpan()
        {
            onRead();
            return values;
        }

        public override MemoryHandle Pin(int elementIndex = 0) => throw new NotSupportedException();
        public override void Unpin() { }
        protected override void Dispose(bool disposing) { }
    }

    private string[] TemporaryFiles() => Directory.GetFiles(_directory, "*.tmp").Select(Path.GetFileName).ToArray()!;

    [Fact]
    public void TheTemporaryFileIsNamedAfterTheTargetTheProcessAndARandomPart()
    {
        string path = PathOf("named.safetensors");
        var seen = new List<string[]>();
        var memory = new InterceptedMemory(new float[4], () => seen.Add(TemporaryFiles()));
        SafeTensors.Write(path, Tensors(1f, memory.Memory));
        SafeTensors.Write(path, Tensors(1f, memory.Memory));

        Assert.Equal(2, seen.Count);
        string pattern = $"^named\\.safetensors\\.{Environment.ProcessId}\\.[0-9a-f]{{16}}\\.tmp$";
        Assert.All(seen, files => Assert.Matches(pattern, Assert.Single(files)));
        Assert.NotEqual(seen[0][0], seen[1][0]); // a fresh name for every write
        Assert.Empty(TemporaryFiles());
    }

    [Fact]
    public void ConcurrentWritersOfOneFileNeverShareATemporaryFile()
    {
        // With one shared "{path}.tmp" the writers truncate, lock or delete each other's file and some of them fail.
        string path = PathOf("shared.safetensors");
        Parallel.For(0, 16, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            for (int round = 0; round < 5; round++) SafeTensors.Write(path, Tensors(i));
        });
        SafeTensorHeader header = SafeTensors.ReadHeader(path); // whichever writer renamed last, the file is whole
        Assert.Equal(["a", "b"], header.Tensors.Select(t => t.Name));
        Assert.Empty(TemporaryFiles());
    }

    [Fact]
    public void AFailedWriteDeletesOnlyItsOwnTemporaryFileAndLeavesTheOldFileIntact()
    {
        string path = PathOf("intact.safetensors");
        SafeTensors.Write(path, Tensors(1f));
        byte[] before = File.ReadAllBytes(path);
        // Another writer's temporary file, in flight or left by a crash: not this writer's to delete.
        string foreign = path + $".{DeadProcessId}.0123456789abcdef.tmp";
        File.WriteAllText(foreign, "another writer");

        var failing = new InterceptedMemory(new float[4], () => throw new IOException("disk full"));
        var e = Assert.Throws<IOException>(() => SafeTensors.Write(path, Tensors(2f, failing.Memory)));
        Assert.Contains(path, e.Message);        // the checkpoint is named, not only the failing device
        Assert.Contains("disk full", e.Message);
        Assert.Equal("disk full", e.InnerException!.Message);

        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal([Path.GetFileName(foreign)], TemporaryFiles());
        Assert.Equal("another writer", File.ReadAllText(foreign));
    }

    [Fact]
    public void StaleTemporaryFilesOfCrashedWritersAreDeleted()
    {
        string path = PathOf("run.safetensors");
        SafeTensors.Write(path, Tensors(1f));
        string dead = path + $".{DeadProcessId}.00000000000000aa.tmp";                  // writer gone
        string reusedId = path + $".{Environment.ProcessId}.00000000000000bb.tmp";      // an earlier process with this id
        string running = path + ".1.00000000000000cc.tmp";                               // pid 1 always runs
        string runningButOld = path + ".1.00000000000000dd.tmp";                         // its id was reused long ago
        string[] unrelated =
        [
            path + ".bak",
            path + $".{DeadProcessId}.not-hex-at-all!.tmp",
            path + $".{DeadProcessId}.tmp",
            PathOf("other.safetensors") + $".{DeadProcessId}.00000000000000ee.tmp",
            path + $".extra.{DeadProcessId}.00000000000000ff.tmp",
        ];
        foreach (string file in unrelated.Append(dead).Append(reusedId).Append(running).Append(runningButOld))
            File.WriteAllText(file, "partial");
        File.SetLastWriteTimeUtc(runningButOld, DateTime.UtcNow - SafeTensors.StaleTemporaryFileAge - TimeSpan.FromMinutes(5));

        IReadOnlyList<string> deleted = SafeTensors.DeleteStaleTemporaryFiles(path);

        Assert.Equal(new[] { dead, reusedId, runningButOld }.Order(), deleted.Order());
        Assert.All(unrelated.Append(running).Append(path), file => Assert.True(File.Exists(file), file));
        Assert.Empty(SafeTensors.DeleteStaleTemporaryFiles(path));
        Assert.Empty(SafeTensors.DeleteStaleTemporaryFiles(PathOf("missing-folder/x.safetensors")));
    }

    [Fact]
    public void TheCurrentProcesssInFlightTemporaryFileIsNeverDeleted()
    {
        string path = PathOf("busy.safetensors");
        IReadOnlyList<string>? deletedMidWrite = null;
        var memory = new InterceptedMemory(new float[4], () => deletedMidWrite = SafeTensors.DeleteStaleTemporaryFiles(path));
        SafeTensors.Write(path, Tensors(3f, memory.Memory)); // the rename would fail had its file been deleted
        Assert.NotNull(deletedMidWrite);
        Assert.Empty(deletedMidWrite);
        Assert.Equal(["a", "b"], SafeTensors.ReadHeader(path).Tensors.Select(t => t.Name));
    }
}
