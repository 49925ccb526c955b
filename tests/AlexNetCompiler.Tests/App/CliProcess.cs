using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace AlexNetCompiler.Tests.App;

/// <summary>
/// The alexnet-fashion command line as a real child process (the build copies it next to the tests): its output,
/// exit code, and signals sent with kill(2). Disposing kills a process still running, so a failed assertion
/// leaves no run behind. Linux only (kill(2), setpriv).
/// </summary>
[SupportedOSPlatform("linux")]
public sealed partial class CliProcess : IDisposable
{
    public const int SigKill = 9, SigTerm = 15, SigCont = 18, SigStop = 19;

    /// <summary>Only a guard against hangs: every run here takes seconds.</summary>
    public static readonly TimeSpan HangGuard = TimeSpan.FromMinutes(10);

    private readonly Process _process;
    private readonly StringBuilder _stdout = new(), _stderr = new();

    private CliProcess(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_stdout) _stdout.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_stderr) _stderr.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public static string AppFolder => AppContext.BaseDirectory;

    /// <summary>The dotnet host running these tests: the child uses the same runtime.</summary>
    public static string DotnetHost
    {
        get
        {
            string? fromSdk = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
            if (!string.IsNullOrEmpty(fromSdk) && File.Exists(fromSdk)) return fromSdk;
            // .../dotnet/shared/Microsoft.NETCore.App/<version>/System.Private.CoreLib.dll
            string runtime = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
            string host = Path.GetFullPath(Path.Combine(runtime, "..", "..", "..", "dotnet"));
            return File.Exists(host) ? host : "dotnet";
        }
    }

    /// <summary>
    /// Starts `dotnet alexnet-fashion.dll arguments...`; with <paramref name="user"/>, as that unprivileged user; with
    /// <paramref name="environment"/>, with those variables set.
    /// </summary>
    public static CliProcess Start(IEnumerable<string> arguments, UnprivilegedUser? user = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        string appDll = Path.Combine(user?.AppFolder ?? AppFolder, "alexnet-fashion.dll");
        if (!File.Exists(appDll)) throw new FileNotFoundException($"{appDll} is missing: the test project references examples/FashionMnist, whose build output should be copied here.", appDll);
        var start = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true, // no terminal: the plain, non-interactive output
            UseShellExecute = false,
            WorkingDirectory = Path.GetTempPath(),
        };
        if (user is null)
        {
            start.FileName = DotnetHost;
        }
        else
        {
            // setpriv execs the command in place, so the child's process id is the run's.
            start.FileName = UnprivilegedUser.Setpriv;
            foreach (string a in user.SetprivArguments) start.ArgumentList.Add(a);
            start.ArgumentList.Add(DotnetHost);
            foreach (var (name, value) in user.Environment) start.Environment[name] = value;
        }
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) start.Environment[name] = value;
        return Launch(start, appDll, arguments);
    }

    /// <summary>
    /// Starts <c>mpirun -np ranks ... dotnet alexnet-fashion.dll arguments...</c> (Open MPI): the process is mpirun, whose
    /// children are the ranks (<see cref="RankProcessIds"/>). Oversubscribed and unbound, so that two ranks start on any
    /// machine; allowed to run as root, as CI does (Open MPI refuses that unless told).
    /// </summary>
    public static CliProcess StartMpi(int ranks, IEnumerable<string> arguments)
    {
        string appDll = Path.Combine(AppFolder, "alexnet-fashion.dll");
        var start = new ProcessStartInfo
        {
            FileName = "mpirun",
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetTempPath(),
        };
        // --timeout: mpirun itself ends a job that runs past it (every job here takes well under a minute) and says
        // where each rank was, so a stuck job fails its test in minutes instead of at the hang guard.
        foreach (string a in new[] { "-np", ranks.ToString(System.Globalization.CultureInfo.InvariantCulture), "--oversubscribe", "--bind-to", "none",
            "--timeout", "300", "--report-state-on-timeout", DotnetHost })
            start.ArgumentList.Add(a);
        start.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
        start.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
        // Shared-memory transfers without cross-process memory copies, which container sandboxes may forbid.
        start.Environment["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none";
        return Launch(start, appDll, arguments);
    }

    /// <summary>
    /// The process ids of an mpirun's ranks by rank (read from each child's OMPI_COMM_WORLD_RANK); empty entries until
    /// started. Children are found by their parent id in /proc/PID/stat, which every Linux kernel has.
    /// </summary>
    public Dictionary<int, int> RankProcessIds()
    {
        var ranks = new Dictionary<int, int>();
        foreach (string folder in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(folder), out int child)) continue;
            try
            {
                // "pid (comm) state ppid ...": the name may hold spaces and parentheses, so split after its last ')'.
                string stat = File.ReadAllText(Path.Combine(folder, "stat"));
                string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (int.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture) != Id) continue;
                string environment = File.ReadAllText(Path.Combine(folder, "environ"));
                string? rank = environment.Split('\0').FirstOrDefault(v => v.StartsWith("OMPI_COMM_WORLD_RANK=", StringComparison.Ordinal));
                if (rank is not null) ranks[int.Parse(rank["OMPI_COMM_WORLD_RANK=".Length..], System.Globalization.CultureInfo.InvariantCulture)] = child;
            }
            catch (IOException) { } // the process has just exited
            catch (UnauthorizedAccessException) { }
        }
        return ranks;
    }

    private static CliProcess Launch(ProcessStartInfo start, string appDll, IEnumerable<string> arguments)
    {
        if (!File.Exists(appDll)) throw new FileNotFoundException($"{appDll} is missing: the test project references examples/FashionMnist, whose build output should be copied here.", appDll);
        start.ArgumentList.Add(appDll);
        foreach (string a in arguments) start.ArgumentList.Add(a);
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {start.FileName}.");
        process.StandardInput.Close();
        return new CliProcess(process);
    }

    /// <summary>Runs to the end (within <see cref="HangGuard"/>).</summary>
    public static CliProcess Run(IEnumerable<string> arguments, UnprivilegedUser? user = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        CliProcess process = Start(arguments, user, environment);
        try
        {
            process.WaitForExit();
            return process;
        }
        catch
        {
            process.Dispose();
            throw;
        }
    }

    public int Id => _process.Id;
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;
    public string Stdout { get { lock (_stdout) return _stdout.ToString(); } }
    public string Stderr { get { lock (_stderr) return _stderr.ToString(); } }
    public string Output => Stdout + Stderr;

    /// <summary>The output's non-blank lines, for one-line error messages.</summary>
    public string[] OutputLines => Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Waits for the exit (and the last of its output); a process still running after the guard is killed and reported.</summary>
    public int WaitForExit()
    {
        if (!_process.WaitForExit(HangGuard))
        {
            Signal(SigKill);
            _process.WaitForExit();
            throw new TimeoutException($"alexnet-fashion (process {Id}) was still running after {HangGuard.TotalMinutes:F0} min; killed. Output:\n{Output}");
        }
        _process.WaitForExit(); // drains the redirected output
        return _process.ExitCode;
    }

    /// <summary>Sends a signal with kill(2); false when the process is already gone.</summary>
    public bool Signal(int signal) => Signal(_process.Id, signal);

    public static bool Signal(int processId, int signal) => Kill(processId, signal) == 0;

    public string Describe() => $"exit {(HasExited ? ExitCode.ToString(System.Globalization.CultureInfo.InvariantCulture) : "(running)")}\n--- stdout ---\n{Stdout}--- stderr ---\n{Stderr}";

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            // mpirun's ranks first: killed with SIGKILL, mpirun could not end them.
            try
            {
                foreach (int rank in RankProcessIds().Values) Signal(rank, SigKill);
            }
            catch (IOException) { } // /proc could not be listed: mpirun's own end is all that is left
            catch (UnauthorizedAccessException) { }
            Signal(SigKill); // also ends a stopped process
            _process.WaitForExit(HangGuard);
        }
        _process.Dispose();
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int processId, int signal);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEffectiveUserId();

    public static bool RunningAsRoot => GetEffectiveUserId() == 0;
}

/// <summary>
/// Reports each checkpoint temporary file ("{last|best}.safetensors.{pid}.{16 hex}.tmp") as it is created in a folder,
/// through inotify, so a test can signal the writer while the write is still in progress.
/// </summary>
public sealed partial class CheckpointWriteWatcher : IDisposable
{
    private readonly FileSystemWatcher _watcher;
    private readonly Func<CheckpointWrite, bool> _onWrite;
    private readonly List<CheckpointWrite> _seen = [];
    private readonly HashSet<int> _epochsWithBest = [];
    private int _lastWrites;
    private bool _done;

    /// <param name="onWrite">Called on the watcher's thread for each write until it returns true.</param>
    public CheckpointWriteWatcher(string folder, Func<CheckpointWrite, bool> onWrite)
    {
        _onWrite = onWrite;
        _watcher = new FileSystemWatcher(folder, "*.tmp") { NotifyFilter = NotifyFilters.FileName, IncludeSubdirectories = false };
        _watcher.Created += OnCreated;
        _watcher.EnableRaisingEvents = true;
    }

    /// <summary>Every checkpoint write seen so far, in order.</summary>
    public IReadOnlyList<CheckpointWrite> Seen { get { lock (_seen) return [.. _seen]; } }

    private void OnCreated(object sender, FileSystemEventArgs e)
    {
        Match match = TemporaryName().Match(e.Name ?? "");
        if (!match.Success) return;
        lock (_seen)
        {
            bool isLast = match.Groups[1].Value == "last";
            // Per epoch the trainer writes best (when the epoch improved) and then last: counting the writes of
            // last tells which epoch a write belongs to.
            if (isLast) _lastWrites++;
            int epoch = isLast ? _lastWrites : _lastWrites + 1;
            if (!isLast) _epochsWithBest.Add(epoch);
            var write = new CheckpointWrite(e.FullPath, isLast ? "last" : "best", int.Parse(match.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture),
                epoch, EpochImproved: _epochsWithBest.Contains(epoch), PreviousEpochImproved: _epochsWithBest.Contains(epoch - 1));
            _seen.Add(write);
            if (_done) return;
            _done = _onWrite(write);
        }
    }

    public void Dispose() => _watcher.Dispose();

    [GeneratedRegex(@"^(last|best)\.safetensors\.([0-9]+)\.[0-9a-f]{16}\.tmp$")]
    private static partial Regex TemporaryName();
}

/// <summary>
/// One checkpoint write: its temporary file, which checkpoint, the writer, the epoch it saves, and whether that epoch and
/// the one before improved (wrote best).
/// </summary>
public sealed record CheckpointWrite(string TemporaryPath, string Checkpoint, int WriterId, int Epoch, bool EpochImproved, bool PreviousEpochImproved);

/// <summary>
/// Runs the child as nobody (uid and gid 65534) through setpriv, so that file permissions deny it what they deny a
/// user; root ignores them. The child gets a HOME of its own, and a copy of the app when it cannot read the build
/// output where it is (a checkout under /root, say).
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class UnprivilegedUser : IDisposable
{
    public const string Setpriv = "/usr/bin/setpriv";
    public const int Id = 65534;

    private readonly string _root;

    private UnprivilegedUser(string root, string appFolder)
    {
        _root = root;
        AppFolder = appFolder;
        Environment = new Dictionary<string, string>
        {
            ["HOME"] = Path.Combine(root, "home"),
            ["DOTNET_CLI_HOME"] = Path.Combine(root, "home"),
        };
    }

    public string AppFolder { get; }
    public IReadOnlyDictionary<string, string> Environment { get; }
    public IReadOnlyList<string> SetprivArguments { get; } = [$"--reuid={Id}", $"--regid={Id}", "--clear-groups", "--"];

    public static UnprivilegedUser Create()
    {
        if (!File.Exists(Setpriv)) throw new InvalidOperationException($"{Setpriv} (util-linux) is needed to run the app as an unprivileged user.");
        string root = Path.Combine(Path.GetTempPath(), "anc-nobody-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(root, "home"));
        File.SetUnixFileMode(root, AllAccess);
        File.SetUnixFileMode(Path.Combine(root, "home"), AllAccess);
        var user = new UnprivilegedUser(root, CliProcess.AppFolder);
        if (user.CanRunApp(out _)) return user;

        string copy = Path.Combine(root, "app");
        CopyApp(CliProcess.AppFolder, copy);
        user = new UnprivilegedUser(root, copy);
        if (!user.CanRunApp(out string output))
        {
            user.Dispose();
            throw new InvalidOperationException($"uid {Id} cannot run {CliProcess.DotnetHost} {Path.Combine(copy, "alexnet-fashion.dll")} (can it read the dotnet install?):\n{output}");
        }
        return user;
    }

    private bool CanRunApp(out string output)
    {
        using CliProcess probe = CliProcess.Run(["--help"], this);
        output = probe.Describe();
        return probe.ExitCode == 0;
    }

    /// <summary>Copies what alexnet-fashion.deps.json says the app loads (this platform's native libraries included), readable by all.</summary>
    private static void CopyApp(string from, string to)
    {
        var files = new HashSet<string>(StringComparer.Ordinal) { "alexnet-fashion.dll", "alexnet-fashion.deps.json", "alexnet-fashion.runtimeconfig.json" };
        using (JsonDocument deps = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(from, "alexnet-fashion.deps.json"))))
        {
            foreach (JsonProperty target in deps.RootElement.GetProperty("targets").EnumerateObject())
                foreach (JsonProperty library in target.Value.EnumerateObject())
                {
                    // Assemblies land next to the app; native libraries keep their runtimes/<rid>/native/ path.
                    if (library.Value.TryGetProperty("runtime", out JsonElement runtime))
                        foreach (JsonProperty file in runtime.EnumerateObject()) files.Add(Path.GetFileName(file.Name));
                    if (library.Value.TryGetProperty("runtimeTargets", out JsonElement native))
                        foreach (JsonProperty file in native.EnumerateObject()) files.Add(file.Name);
                }
        }
        foreach (string file in files)
        {
            string source = Path.Combine(from, file);
            if (!File.Exists(source)) continue; // e.g. another platform's library the build did not copy
            string destination = Path.Combine(to, file);
            Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
            File.Copy(source, destination);
        }
        foreach (string directory in Directory.EnumerateDirectories(to, "*", SearchOption.AllDirectories).Prepend(to))
            File.SetUnixFileMode(directory, ReadAndSearch);
        foreach (string file in Directory.EnumerateFiles(to, "*", SearchOption.AllDirectories))
            File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
    }

    private const UnixFileMode ReadAndSearch = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
        UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    private const UnixFileMode AllAccess = ReadAndSearch | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite;

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
